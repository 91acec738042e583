//! One running function instance: the sandboxed runtime process, its network namespace, the way openfc talks
//! to its runtime (HTTP connections to `caPort`, or the Runtime API it serves inside), its output, and its
//! lifecycle (start → ready → initialize → invoke ... → stop).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::sync::Semaphore;

use crate::cgroup::{Cgroup, Limits};
use crate::logs::LogRing;
use crate::logstore::LogFile;
use crate::runtime::{Launch, Markers, Protocol, RUNTIME_API_ADDR, RUNTIME_MOUNT};
use crate::runtime_api::{Ready, RuntimeApi};
use crate::{FunctionSpec, InvokeError, Shared};
use openfc_core::images::ContainerPlan;

pub use crate::control::{CallError, Control, ControlHeaders, Hook, HttpTarget, RuntimeResponse};
pub(crate) use crate::control::{X_FC_TRACING_ENDPOINT, X_FC_TRACING_SPAN, span_context};
use crate::control::Conn;
use crate::env::{container_env, env_vec, inside_id};
pub(crate) use crate::env::generic_env;

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

/// Hands the launcher process to a task that waits for its end (and the Runtime API, if any, learns of it at
/// once: an invocation in flight fails then rather than at its timeout), or kills it when asked (or when the
/// instance is dropped).
fn watch_launcher(
    mut child: tokio::process::Child,
    api: Option<Arc<RuntimeApi>>,
) -> (tokio::sync::oneshot::Sender<()>, tokio::sync::watch::Receiver<Option<Option<i32>>>) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (exit_tx, exit_rx) = tokio::sync::watch::channel(None);
    tokio::spawn(async move {
        let status = tokio::select! {
            status = child.wait() => status,
            _ = stop_rx => {
                let _ = child.start_kill();
                child.wait().await
            }
        };
        // The exit code first: the calls `end` fails read it.
        exit_tx.send_replace(Some(status.ok().and_then(|s| s.code())));
        if let Some(api) = api {
            api.end();
        }
    });
    (stop_tx, exit_rx)
}

/// Finds the launcher's only child: the namespace's init.
pub(crate) fn init_pid(launcher: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{launcher}/task/{launcher}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// What an instance's root file system shows.
pub enum InstanceRoot {
    /// The host's system directories, the package at `/code`, merged layers at `/opt`, the runtime shims.
    Code { code: PathBuf, layers: Option<PathBuf> },
    /// As `Code`, in a sandbox started ahead of need whose runtime waits for its function (`prestart`).
    Prestarted { waiting: crate::prestart::Waiting, code: PathBuf, layers: Option<PathBuf> },
    /// A container image's flattened tree, read-only; `event`: a non-web image run for this one event (given
    /// in `FC_CUSTOM_CONTAINER_EVENT`; the process's exit is the result).
    Image { tree: PathBuf, plan: Arc<ContainerPlan>, event: Option<Bytes> },
}

impl Instance {
    pub async fn start(
        shared: &Shared,
        spec: &FunctionSpec,
        launch: Launch,
        fs: InstanceRoot,
        log_file: Arc<LogFile>,
    ) -> Result<Arc<Instance>, InvokeError> {
        let t0 = Instant::now();
        let (fs, waiting) = match fs {
            InstanceRoot::Prestarted { waiting, code, layers } => (InstanceRoot::Code { code, layers }, Some(waiting)),
            other => (other, None),
        };
        let (id, mut child, launcher_cgroup, ctrl) = match waiting {
            Some(w) => (w.id, w.child, w.cgroup, Some(w.ctrl)),
            None => {
                let l = crate::launchers::Launchers::take(shared)?;
                (l.id, l.child, l.cgroup, None)
            }
        };
        // Until the instance exists, a failure must not leave the groups (or the launcher) behind.
        let mut cgroup = crate::launchers::GroupGuard(launcher_cgroup);
        let root = shared.instances_dir.join(&id);
        let limits = Limits {
            memory_mb: spec.memory_mb,
            pids: shared.config.pids_limit,
            cpu_shares: (spec.memory_mb * 1024 / 128).max(2),
        };
        std::fs::create_dir_all(&root).map_err(|e| InvokeError::internal(format!("instance root: {e}")))?;
        if let Some(cg) = &cgroup.0 {
            cg.limit(limits).map_err(|e| InvokeError::internal(format!("cgroup limits: {e}")))?;
        }
        let outbound = spec.internet_access && shared.config.slirp4netns.is_some();
        let mut etc_files = crate::network::etc_files(&id, shared.config.uid, shared.config.gid, outbound);
        let api_forward = shared.config.api_addr.filter(|_| spec.role.is_some() && shared.config.credentials.is_some());
        if api_forward.is_some()
            && let Some((_, hosts)) = etc_files.iter_mut().find(|(name, _)| name == "hosts")
        {
            hosts.push_str(&crate::apiforward::hosts_line(&spec.account_id, &spec.region));
        }
        let mut one_shot = false;
        let (uses, sandbox) = match fs {
            // Turned into `Code` above, with its waiting sandbox taken out.
            InstanceRoot::Prestarted { .. } => return Err(InvokeError::internal("a pre-started root left unresolved")),
            InstanceRoot::Code { code, layers } => {
                let uses: Vec<PathBuf> = std::iter::once(code.clone()).chain(layers.clone()).collect();
                let sandbox = openfc_sandbox::Spec {
                    root: root.clone(),
                    binds: [(code, PathBuf::from("/code")), (shared.runtime_dir.clone(), PathBuf::from(RUNTIME_MOUNT))]
                        .into_iter()
                        .chain(layers.map(|d| (d, PathBuf::from("/opt"))))
                        .chain(crate::runtime::builtins_bind(shared.config.builtins_dir.as_deref()))
                        .collect(),
                    tmp_mib: shared.config.tmp_mib,
                    hostname: id.clone(),
                    uid: shared.config.uid,
                    gid: shared.config.gid,
                    nofile: shared.config.nofile,
                    seccomp: true,
                    env: env_vec(spec, &launch, &id),
                    argv: launch.argv,
                    cwd: PathBuf::from("/code"),
                    blackhole: if outbound { shared.blackhole.clone() } else { Vec::new() },
                    etc_files,
                    // A Runtime-API runtime starts only once its listener exists.
                    gate: launch.runtime.protocol == Protocol::RuntimeApi,
                    rootfs: None,
                    groups: Vec::new(),
                    userns_base: None,
                    prestart: false,
                };
                (uses, sandbox)
            }
            InstanceRoot::Image { tree, plan, event } => {
                let (base, user) = (shared.config.image_owner_base, &plan.image.user);
                let mut env = container_env(spec, &plan, &launch, &id);
                if let Some(event) = &event {
                    one_shot = true;
                    env.push(("FC_CUSTOM_CONTAINER_EVENT".into(), String::from_utf8_lossy(event).into_owned()));
                }
                let sandbox = openfc_sandbox::Spec {
                    root: root.clone(),
                    binds: Vec::new(),
                    tmp_mib: shared.config.tmp_mib,
                    hostname: id.clone(),
                    uid: inside_id(user.uid),
                    gid: inside_id(user.gid),
                    nofile: shared.config.nofile,
                    seccomp: true,
                    env,
                    argv: launch.argv,
                    cwd: PathBuf::from(&plan.cwd),
                    blackhole: if outbound { shared.blackhole.clone() } else { Vec::new() },
                    etc_files,
                    gate: false,
                    rootfs: Some(tree.clone()),
                    groups: user.groups.iter().map(|g| inside_id(*g)).collect(),
                    userns_base: base,
                    prestart: false,
                };
                (vec![tree], sandbox)
            }
        };
        let start_timeout_secs =
            if sandbox.rootfs.is_some() { shared.config.container_start_timeout_secs } else { shared.config.start_timeout_secs };
        let mut stdin = child.stdin.take();
        // The sandbox exists and its limits are now set: hand its runtime the function (a Runtime-API runtime's
        // once its listener exists, below, as the gate of a fresh one).
        let activate = |sock: &std::os::unix::net::UnixStream| -> Result<(), InvokeError> {
            let activation = serde_json::json!({ "env": sandbox.env }).to_string();
            crate::prestart::activate(sock, &uses[0], uses.get(1).map(PathBuf::as_path), &sandbox.blackhole, &activation)?;
            metrics::counter!("openfc_prestarted_runtimes_used_total").increment(1);
            Ok(())
        };
        match &ctrl {
            Some(_) if launch.runtime.protocol == Protocol::RuntimeApi => {}
            Some(sock) => activate(sock)?,
            None => {
                let mut spec_json = serde_json::to_vec(&sandbox).map_err(|e| InvokeError::internal(e.to_string()))?;
                spec_json.push(b'\n');
                if let Some(pipe) = stdin.as_mut() {
                    tokio::io::AsyncWriteExt::write_all(pipe, &spec_json)
                        .await
                        .map_err(|e| InvokeError::internal(format!("handing the sandbox its spec: {e}")))?;
                }
                if !sandbox.gate {
                    // Ungated: EOF after the spec (the gate would otherwise wait on it).
                    drop(stdin.take());
                }
            }
        }
        let logs = Arc::new(LogRing::new(shared.config.log_ring_bytes));
        for stream in [child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>)].into_iter().flatten() {
            let (logs, id, file) = (logs.clone(), id.clone(), log_file.clone());
            tokio::spawn(crate::logs::drain_lines(stream, crate::logs::MAX_LINE, move |line| {
                file.append(&id, &line);
                logs.push(line);
            }));
        }
        let pid = child.id().ok_or_else(|| InvokeError::internal("sandbox exited at once"))?;
        let deadline = Instant::now() + Duration::from_secs(start_timeout_secs);
        // `None`: a one-shot (non-web) process that already ran to its end — its exit is the result.
        let init = loop {
            if let Some(p) = init_pid(pid) {
                break Some(p);
            }
            if let Ok(Some(status)) = child.try_wait() {
                if one_shot {
                    break None;
                }
                let _ = std::fs::remove_dir(&root);
                return Err(InvokeError::NotStarted(format!("the sandbox exited ({status}): {}", logs.tail(20).join("\n"))));
            }
            if Instant::now() > deadline {
                return Err(InvokeError::NotStarted("the sandbox did not start".into()));
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        metrics::histogram!("openfc_cold_start_seconds", "phase" => "sandbox").record(t0.elapsed().as_secs_f64());
        let t_sandbox = Instant::now();
        let netns = match init {
            Some(init) => std::fs::File::open(format!("/proc/{init}/ns/net")),
            // Nothing will connect to a process that has ended; the handle is only kept.
            None => shared.home_netns.try_clone(),
        }
        .map_err(|e| InvokeError::internal(format!("opening the instance network namespace: {e}")))?;
        // A function with a role: openfc's API at FC's endpoint names, before its code can call it.
        let api_forwarder = match (api_forward, init) {
            (Some(api), Some(_)) => Some(
                crate::apiforward::start(&netns, &shared.home_netns, api)
                    .await
                    .map_err(|e| InvokeError::internal(format!("the API forwarder in the instance: {e}")))?,
            ),
            _ => None,
        };
        let runtime_api = match launch.runtime.protocol {
            Protocol::Http => None,
            Protocol::RuntimeApi => {
                // The listener first, then the gate: the runtime's first `/next` must find it (runtimes.md §3.5).
                let (ns, home) = (netns.try_clone(), shared.home_netns.try_clone());
                let listener = tokio::task::spawn_blocking(move || openfc_sandbox::listen_in_netns(&ns?, &home?, RUNTIME_API_ADDR))
                    .await
                    .map_err(|e| InvokeError::internal(format!("runtime API listener task: {e}")))?
                    .and_then(|l| {
                        l.set_nonblocking(true)?;
                        tokio::net::TcpListener::from_std(l)
                    })
                    .map_err(|e| InvokeError::internal(format!("the runtime API listener in the instance: {e}")))?;
                let api = RuntimeApi::new();
                api.serve(listener);
                if let Some(sock) = &ctrl {
                    activate(sock)?;
                }
                if let Some(mut pipe) = stdin.take() {
                    tokio::io::AsyncWriteExt::write_all(&mut pipe, b"g")
                        .await
                        .map_err(|e| InvokeError::internal(format!("opening the sandbox's gate: {e}")))?;
                }
                Some(api)
            }
        };
        // 0: the one-shot process has ended (no namespace to wait for or to give a network stack).
        let init = init.unwrap_or(0);
        if outbound && init != 0 {
            // slirp4netns configures tap0 through the address ioctls, which give 10.0.2.100 the classful /8
            // for a moment: started while init still sets its blackhole routes, it races them (EEXIST, or a
            // 10/8 route through tap0). Init forks the runtime only after its routes, so wait for that child.
            while init_pid(init).is_none() {
                if let Ok(Some(status)) = child.try_wait() {
                    if one_shot {
                        break;
                    }
                    let _ = std::fs::remove_dir(&root);
                    return Err(InvokeError::NotStarted(format!("the sandbox exited ({status}): {}", logs.tail(20).join("\n"))));
                }
                if Instant::now() > deadline {
                    return Err(InvokeError::NotStarted("the sandbox did not start its runtime".into()));
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
        let ended = matches!(child.try_wait(), Ok(Some(_)));
        let slirp = match (&shared.config.slirp4netns, spec.internet_access && init != 0 && !ended) {
            (Some(bin), true) => Some(
                tokio::process::Command::new(bin)
                    // Its own mount namespace without capabilities, and a syscall filter: it parses the
                    // function's packets as root.
                    .args(["--configure", "--mtu=65520", "--disable-host-loopback", "--enable-sandbox", "--enable-seccomp"])
                    .args([&init.to_string(), "tap0"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(|e| InvokeError::internal(format!("starting slirp4netns: {e}")))?,
            ),
            _ => None,
        };
        if let (Some(cg), Some(pid)) = (&cgroup.0, slirp.as_ref().and_then(|s| s.id())) {
            // The network stack's memory and processes count against the instance that uses it. Joining
            // waits out an RCU grace period on cgroup v1, so it happens off the cold path.
            let dirs = cg.dirs().to_vec();
            crate::launchers::off_async(move || {
                for d in dirs {
                    if let Err(e) = std::fs::write(d.join("cgroup.procs"), pid.to_string()) {
                        tracing::debug!(error = %e, group = %d.display(), "slirp4netns could not join the instance's cgroup");
                    }
                }
            });
        }
        let (stop, exit) = watch_launcher(child, runtime_api.clone());
        let exec = crate::exec::Profile::of(&sandbox, init);
        let instance = Arc::new(Instance {
            id,
            markers: launch.runtime.markers,
            permits: Arc::new(Semaphore::new(launch.concurrency as usize)),
            concurrency: launch.concurrency,
            logs,
            cgroup: cgroup.0.take().map(Arc::new),
            stop: Mutex::new(Some(stop)),
            exit,
            slirp: Mutex::new(slirp),
            netns,
            transport: match runtime_api {
                _ if one_shot => Transport::Exit,
                Some(api) => Transport::RuntimeApi(api),
                None => Transport::Http { port: spec.ca_port, idle: Mutex::new(Vec::new()) },
            },
            last_used: Mutex::new(Instant::now()),
            uses,
            dead: AtomicBool::new(false),
            released: AtomicBool::new(false),
            root,
            exec,
            _api_forwarder: api_forwarder,
        });
        let failed = |instance: Arc<Instance>, why: String| async move {
            instance.kill();
            // Give the output readers a moment to collect the runtime's last words.
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err(InvokeError::NotStarted(format!("{why}. Last output:\n{}", instance.logs.tail(20).join("\n"))))
        };
        match &instance.transport {
            Transport::Exit => {}
            Transport::RuntimeApi(api) => {
                // Ready at the runtime's first `/next`.
                let why = match api.wait_ready(tokio::time::Instant::from_std(deadline)).await {
                    Ready::Polled => None,
                    Ready::InitError(body) => Some(format!("the runtime reported an init error: {}", String::from_utf8_lossy(&body))),
                    Ready::Ended => Some("the runtime exited before asking for a request".to_owned()),
                    Ready::TimedOut => Some(format!(
                        "the runtime did not ask for a request (GET /2020-11-11/runtime/invocation/next at FC_RUNTIME_API) within {} s",
                        start_timeout_secs
                    )),
                };
                if let Some(why) = why {
                    return failed(instance, why).await;
                }
            }
            Transport::Http { port, idle } => {
                // Ready when the runtime accepts a connection on caPort inside its namespace.
                let mut delay = Duration::from_micros(500);
                loop {
                    match instance.connect(shared, *port).await {
                        Ok(conn) => {
                            idle.lock().expect("idle").push(conn);
                            break;
                        }
                        Err(_) if !instance.exited() && Instant::now() < deadline => {
                            tokio::time::sleep(delay).await;
                            // Polls are cheap (one connect attempt); a coarse back-off would add its own latency.
                            delay = (delay * 2).min(Duration::from_millis(2));
                        }
                        Err(e) => {
                            let why = if instance.exited() { "the runtime exited before listening".to_owned() } else {
                                format!("the runtime did not listen on port {port} within {start_timeout_secs} s ({e})")
                            };
                            return failed(instance, why).await;
                        }
                    }
                }
            }
        }
        metrics::histogram!("openfc_cold_start_seconds", "phase" => "runtime_ready").record(t_sandbox.elapsed().as_secs_f64());
        Ok(instance)
    }

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
