//! One running function instance: the sandboxed runtime process, its network namespace, the way openfc talks
//! to its runtime (HTTP connections to `caPort`, or the Runtime API it serves inside), its output, and its
//! lifecycle (start → ready → initialize → invoke ... → stop).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::sync::Semaphore;

use crate::cgroup::Cgroup;
use crate::logs::LogRing;
use crate::runtime::Markers;
use crate::runtime_api::RuntimeApi;
use crate::Shared;
use openfc_core::images::ContainerPlan;

pub use crate::control::{CallError, Control, ControlHeaders, Hook, HttpTarget, RuntimeResponse};
pub(crate) use crate::control::{X_FC_TRACING_ENDPOINT, X_FC_TRACING_SPAN, span_context};
use crate::control::Conn;
pub(crate) use crate::env::generic_env;

/// `Instance::start`: its steps, from a taken sandbox to a ready runtime.
mod start;
pub(crate) use start::init_pid;

/// Largest response body a function may return.
pub const MAX_RESPONSE: usize = 32 * 1024 * 1024;

pub struct Instance {
    pub id: String,
    pub markers: Markers,
    pub permits: Arc<Semaphore>,
    /// How many slots `permits` has (the function's instanceConcurrency, capped by its runtime).
    pub concurrency: u32,
    pub logs: Arc<LogRing>,
    pub cgroup: Option<Arc<Cgroup>>,
    /// Asks the task that owns the launcher process to kill it (dropped: the same).
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    /// The launcher's end, once it has ended: `Some(exit code)` (`Some(None)`: by a signal).
    exit: tokio::sync::watch::Receiver<Option<Option<i32>>>,
    /// The user-mode network stack of an instance with outbound access.
    slirp: Mutex<Option<tokio::process::Child>>,
    netns: std::fs::File,
    transport: Transport,
    last_used: Mutex<Instant>,
    /// Host directories this instance shows (its package and merged layers): kept while it runs.
    pub uses: Vec<PathBuf>,
    dead: AtomicBool,
    /// `release` has run (it is reached from `kill` and again from `Drop`).
    released: AtomicBool,
    root: PathBuf,
    /// How its runtime runs, for InstanceExec.
    pub(crate) exec: crate::exec::Profile,
    /// openfc's API inside, for a function with a role (stops when the instance is dropped).
    _api_forwarder: Option<crate::apiforward::ApiForwarder>,
}

/// How openfc reaches the runtime (`runtime::Protocol`).
enum Transport {
    /// Keep-alive connections to `caPort`, made inside the namespace.
    Http { port: u16, idle: Mutex<Vec<Conn>> },
    RuntimeApi(Arc<RuntimeApi>),
    /// Nothing to talk to: the process runs one event to its end (a non-web container image).
    Exit,
}

/// What an instance's root file system shows.
pub enum InstanceRoot {
    /// The host's system directories, the package at `/code`, merged layers at `/opt`, the runtime shims.
    Code { code: PathBuf, layers: Option<PathBuf> },
    /// As `Code`, in a sandbox started ahead of need whose runtime waits for its function (`prestart`).
    Prestarted { waiting: Box<crate::prestart::Waiting>, code: PathBuf, layers: Option<PathBuf> },
    /// A container image's flattened tree, read-only; `event`: a non-web image run for this one event (given
    /// in `FC_CUSTOM_CONTAINER_EVENT`; the process's exit is the result).
    Image { tree: PathBuf, plan: Arc<ContainerPlan>, event: Option<Bytes> },
}

impl Instance {
    async fn connect(&self, shared: &Shared, port: u16) -> std::io::Result<Conn> {
        let netns = self.netns.try_clone()?;
        let home = shared.home_netns.try_clone()?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let std_stream = tokio::task::spawn_blocking(move || openfc_sandbox::connect_in_netns(&netns, &home, addr))
            .await
            .map_err(std::io::Error::other)??;
        std_stream.set_nonblocking(true)?;
        std_stream.set_nodelay(true)?;
        let stream = tokio::net::TcpStream::from_std(std_stream)?;
        let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(std::io::Error::other)?;
        Ok(Conn { sender, driver })
    }

    pub fn exited(&self) -> bool {
        self.dead.load(Ordering::Relaxed) || self.exit.borrow().is_some()
    }

    /// The exit code of the runtime, once it has ended.
    /// Waits (up to `limit`) for the process to end: `Some(exit code)`, `Some(None)` for a signal.
    pub async fn wait_exit(&self, limit: Duration) -> Option<Option<i32>> {
        let mut rx = self.exit.clone();
        tokio::time::timeout(limit, rx.wait_for(|v| v.is_some())).await.ok()?.ok().and_then(|v| *v)
    }

    pub fn exit_code(&self) -> Option<i32> {
        self.exit.borrow().flatten()
    }

    pub fn touch(&self) {
        *self.last_used.lock().expect("last used") = Instant::now();
    }

    pub fn idle_for(&self) -> Duration {
        self.last_used.lock().expect("last used").elapsed()
    }

    /// Sends one request to the runtime and waits at most `limit` for its answer. `headers`: the function
    /// version's `x-fc-*` headers.
    pub async fn call(
        &self,
        shared: &Shared,
        headers: &ControlHeaders,
        control: Control,
        limit: Duration,
    ) -> Result<RuntimeResponse, CallError> {
        match &self.transport {
            Transport::Exit => Err(CallError::Broken("a non-web container instance takes no requests".into())),
            Transport::RuntimeApi(api) => api.call(&headers.fixed, control, limit).await,
            Transport::Http { port, idle } => {
                let req = control.into_http(headers);
                match tokio::time::timeout(limit, self.call_http(shared, *port, idle, req)).await {
                    Ok(r) => r,
                    Err(_) => Err(CallError::Timeout),
                }
            }
        }
    }

    /// One request over an idle keep-alive connection when there is one, else a new connection.
    async fn call_http(
        &self,
        shared: &Shared,
        port: u16,
        idle: &Mutex<Vec<Conn>>,
        req: http::Request<Full<Bytes>>,
    ) -> Result<RuntimeResponse, CallError> {
        let mut conn = loop {
            let pooled = idle.lock().expect("idle").pop();
            match pooled {
                Some(mut c) => {
                    if c.ready().await {
                        break c;
                    }
                }
                None => break self.connect(shared, port).await.map_err(|e| CallError::Broken(e.to_string()))?,
            }
        };
        let (parts, body) = conn.exchange(req).await?;
        if !conn.sender.is_closed() {
            idle.lock().expect("idle").push(conn);
        }
        Ok(RuntimeResponse { status: parts.status.as_u16(), headers: parts.headers, body })
    }

    /// Stops the instance at once: the launcher, then whatever is left in its cgroup.
    pub fn kill(&self) {
        self.dead.store(true, Ordering::Relaxed);
        if let Some(mut slirp) = self.slirp.lock().expect("slirp").take() {
            let _ = slirp.start_kill();
            tokio::spawn(async move {
                let _ = slirp.wait().await;
            });
        }
        if let Some(stop) = self.stop.lock().expect("stop").take() {
            let _ = stop.send(());
        }
        if let Transport::Http { idle, .. } = &self.transport {
            idle.lock().expect("idle").clear();
        }
        self.release();
    }

    /// Removes the cgroup (waiting for its processes to die) and the root directory, off the async threads.
    fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Transport::RuntimeApi(api) = &self.transport {
            // Its listener and connections go: nothing holds the namespace any more.
            api.end();
        }
        let (cg, root) = (self.cgroup.clone(), self.root.clone());
        crate::launchers::off_async(move || {
            if let Some(cg) = cg
                && !cg.destroy()
            {
                tracing::warn!(groups = ?cg.dirs(), "an instance's cgroup could not be removed; its processes would not die");
            }
            let _ = std::fs::remove_dir(&root);
        });
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_span_context_comes_from_the_request_id() {
        let ctx = super::span_context("1e8a1c2f-0d4b-4c7e-9a11-22b3c4d5e6f7");
        assert_eq!(ctx, "1e8a1c2f0d4b4c7e9a1122b3c4d5e6f7:9a1122b3c4d5e6f7:0:1");
        assert_eq!(super::span_context("abc"), "00000000000000000000000000000abc:0000000000000abc:0:1");
    }
}
