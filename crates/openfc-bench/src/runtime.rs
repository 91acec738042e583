//! The trivial custom runtime: this very binary, shipped in a function's zip as `bootstrap` (it runs as
//! the runtime whenever argv[0] ends with `bootstrap`, or with the `runtime-server` argument on the host
//! as the baseline). A hyper HTTP/1.1 server on `0.0.0.0:$FC_CUSTOM_LISTEN_PORT` (TCP_NODELAY) that
//! answers every request, `POST /invoke` included, 200 with the request body; a body `work:N` first
//! runs N steps of arithmetic (a function that does some work).

use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// Whether this process was started as a custom runtime's `bootstrap`.
pub fn is_bootstrap() -> bool {
    std::env::args_os().next().is_some_and(|a| a.to_string_lossy().ends_with("bootstrap"))
}

/// Serves until killed.
pub fn serve_from_env() -> anyhow::Result<()> {
    let port: u16 = match std::env::var("FC_CUSTOM_LISTEN_PORT") {
        Ok(p) => p.parse().map_err(|_| anyhow::anyhow!("FC_CUSTOM_LISTEN_PORT={p:?} is not a port"))?,
        Err(_) => 9000,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(serve(port))
}

async fn serve(port: u16) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).await?;
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(_) => {
                // Out of descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new().serve_connection(TokioIo::new(tcp), service_fn(echo)).await;
        });
    }
}

async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match req.into_body().collect().await {
        Ok(body) => {
            let body = body.to_bytes();
            if let Some(n) = body.strip_prefix(b"work:").and_then(|n| std::str::from_utf8(n).ok()?.parse::<u64>().ok()) {
                // A fixed amount of computation (not of wall time, which preemption would shorten).
                let mut x = 0u64;
                for i in 0..n {
                    x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
                }
                std::hint::black_box(x);
            }
            Response::new(Full::new(body))
        }
        Err(_) => {
            let mut resp = Response::new(Full::new(Bytes::from_static(b"unreadable request body")));
            *resp.status_mut() = StatusCode::BAD_REQUEST;
            resp
        }
    })
}
