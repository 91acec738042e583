//! How a function with a role reaches openfc's API with its temporary credentials: FC's endpoint names
//! (`ACCOUNT.REGION.fc.aliyuncs.com`, `ACCOUNT.REGION-internal.fc.aliyuncs.com`) resolve to 127.0.0.1 in the
//! instance's `/etc/hosts`, where a listener on port 80 — made by openfc inside the instance's network
//! namespace, like the Runtime API's — forwards each connection to openfc's own address. Nothing else of the
//! host becomes reachable (the blackholes stay), and functions without a role get neither.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// Where the forwarder listens inside the instance.
const LISTEN: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 80);

/// The `/etc/hosts` line naming openfc's API as FC code names FC's endpoint.
pub(crate) fn hosts_line(account: &str, region: &str) -> String {
    format!("127.0.0.1\t{account}.{region}.fc.aliyuncs.com {account}.{region}-internal.fc.aliyuncs.com\n")
}

/// The running forwarder; dropped with its instance, it stops.
pub(crate) struct ApiForwarder(tokio::task::AbortHandle);

impl Drop for ApiForwarder {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the forwarder in the namespace `netns` (an open `/proc/PID/ns/net`) towards `api`.
pub(crate) async fn start(netns: &std::fs::File, home: &std::fs::File, api: SocketAddr) -> std::io::Result<ApiForwarder> {
    let (ns, home) = (netns.try_clone()?, home.try_clone()?);
    let listener = tokio::task::spawn_blocking(move || openfc_sandbox::listen_in_netns(&ns, &home, LISTEN))
        .await
        .map_err(std::io::Error::other)??;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let task = tokio::spawn(async move {
        loop {
            let (mut inside, _) = match listener.accept().await {
                Ok(c) => c,
                // Out of descriptors or memory: back off rather than spin on a core.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            tokio::spawn(async move {
                if let Ok(mut outside) = tokio::net::TcpStream::connect(api).await {
                    let _ = inside.set_nodelay(true);
                    let _ = outside.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut inside, &mut outside).await;
                }
            });
        }
    });
    Ok(ApiForwarder(task.abort_handle()))
}
