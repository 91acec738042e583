//! An instance's start-up, step by step: take a sandbox (a warm launcher, or a pre-started runtime waiting for
//! its function), give it its spec, wait for its namespace's init, set up what the runtime talks through (the
//! Runtime API listener, openfc's API forwarder, slirp4netns), then wait until the runtime is ready.

use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::process::{Child, ChildStdin};
use tokio::sync::Semaphore;

use super::{Instance, InstanceRoot, Transport};
use crate::cgroup::Limits;
use crate::control::Conn;
use crate::env::{container_env, env_vec, inside_id};
use crate::launchers::GroupGuard;
use crate::logs::LogRing;
use crate::logstore::LogFile;
use crate::runtime::{Launch, Protocol, RUNTIME_API_ADDR, RUNTIME_MOUNT};
use crate::runtime_api::{Ready, RuntimeApi};
use crate::{FunctionSpec, InvokeError, Shared};
use openfc_core::images::ContainerPlan;

impl Instance {
    pub async fn start(
        shared: &Shared,
        spec: &FunctionSpec,
        launch: Launch,
        fs: InstanceRoot,
        log_file: Arc<LogFile>,
    ) -> Result<Arc<Instance>, InvokeError> {
        let t0 = Instant::now();
        let mut launch = launch;
        let (fs, waiting) = match fs {
            InstanceRoot::Prestarted { waiting, code, layers } => (InstanceRoot::Code { code, layers }, Some(waiting)),
            other => (other, None),
        };
        let Taken { id, mut child, ctrl, mut cgroup } = take_sandbox(shared, waiting)?;
        let root = prepare_root(shared, spec, &id, &cgroup)?;
        let outbound = spec.internet_access && shared.config.slirp4netns.is_some();
        let (etc_files, api_forward) = etc_files_for(shared, spec, &id, outbound);
        let one_shot = matches!(fs, InstanceRoot::Image { event: Some(_), .. });
        let site = Site { shared, spec, id: &id, root: &root, outbound, etc_files };
        let (uses, sandbox) = match fs {
            // Turned into `Code` above, with its waiting sandbox taken out.
            InstanceRoot::Prestarted { .. } => return Err(InvokeError::internal("a pre-started root left unresolved")),
            InstanceRoot::Code { code, layers } => code_spec(site, &mut launch, code, layers),
            InstanceRoot::Image { tree, plan, event } => image_spec(site, &mut launch, tree, &plan, event),
        };
        let start_timeout_secs =
            if sandbox.rootfs.is_some() { shared.config.container_start_timeout_secs } else { shared.config.start_timeout_secs };
        let mut stdin = child.stdin.take();
        // The sandbox exists and its limits are now set: hand its runtime the function (a Runtime-API runtime's
        // once its listener exists, below, as the gate of a fresh one).
        hand_spec(ctrl.as_ref(), launch.runtime.protocol, &sandbox, &uses, &mut stdin).await?;
        let logs = drain_output(shared, &mut child, &id, &log_file);
        let pid = child.id().ok_or_else(|| InvokeError::internal("sandbox exited at once"))?;
        let deadline = Instant::now() + Duration::from_secs(start_timeout_secs);
        // `None`: a one-shot (non-web) process that already ran to its end — its exit is the result.
        let init = wait_init(&mut child, pid, &root, &logs, deadline, one_shot).await?;
        metrics::histogram!("openfc_cold_start_seconds", "phase" => "sandbox").record(t0.elapsed().as_secs_f64());
        let t_sandbox = Instant::now();
        let netns = open_netns(shared, init)?;
        // A function with a role: openfc's API at FC's endpoint names, before its code can call it.
        let api_forwarder = forward_api(shared, &netns, api_forward, init).await?;
        let runtime_api = match launch.runtime.protocol {
            Protocol::Http => None,
            Protocol::RuntimeApi => Some(start_runtime_api(shared, &netns, ctrl.as_ref(), &sandbox, &uses, &mut stdin).await?),
        };
        // 0: the one-shot process has ended (no namespace to wait for or to give a network stack).
        let init = init.unwrap_or(0);
        if outbound && init != 0 {
            // slirp4netns configures tap0 through the address ioctls, which give 10.0.2.100 the classful /8
            // for a moment: started while init still sets its blackhole routes, it races them (EEXIST, or a
            // 10/8 route through tap0). Init forks the runtime only after its routes, so wait for that child.
            wait_runtime_fork(&mut child, init, &root, &logs, deadline, one_shot).await?;
        }
        let ended = matches!(child.try_wait(), Ok(Some(_)));
        let slirp = start_slirp(shared, spec, init, ended, &cgroup)?;
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
        let ready = match &instance.transport {
            Transport::Exit => Ok(()),
            // Ready at the runtime's first `/next`.
            Transport::RuntimeApi(api) => wait_polled(api, deadline, start_timeout_secs).await,
            // Ready when the runtime accepts a connection on caPort inside its namespace.
            Transport::Http { port, idle } => instance.wait_listening(shared, *port, idle, deadline, start_timeout_secs).await,
        };
        if let Err(why) = ready {
            return failed(instance, why).await;
        }
        metrics::histogram!("openfc_cold_start_seconds", "phase" => "runtime_ready").record(t_sandbox.elapsed().as_secs_f64());
        Ok(instance)
    }

    /// Waits until an HTTP runtime listens on `port`, keeping the connection that proved it; `Err`: why it did not.
    async fn wait_listening(
        &self,
        shared: &Shared,
        port: u16,
        idle: &Mutex<Vec<Conn>>,
        deadline: Instant,
        start_timeout_secs: u64,
    ) -> Result<(), String> {
        let mut delay = Duration::from_micros(500);
        loop {
            match self.connect(shared, port).await {
                Ok(conn) => {
                    idle.lock().expect("idle").push(conn);
                    return Ok(());
                }
                Err(_) if !self.exited() && Instant::now() < deadline => {
                    tokio::time::sleep(delay).await;
                    // Polls are cheap (one connect attempt); a coarse back-off would add its own latency.
                    delay = (delay * 2).min(Duration::from_millis(2));
                }
                Err(e) => {
                    let why = if self.exited() { "the runtime exited before listening".to_owned() } else {
                        format!("the runtime did not listen on port {port} within {start_timeout_secs} s ({e})")
                    };
                    return Err(why);
                }
            }
        }
    }
}

/// The sandbox a start took, and the groups a failed start must not leave behind.
struct Taken {
    id: String,
    child: Child,
    /// The invoker's end of a pre-started runtime's control socket.
    ctrl: Option<UnixStream>,
    cgroup: GroupGuard,
}

/// Takes the sandbox to start in (the waiting pre-started runtime, else a warm launcher), guarding its groups.
fn take_sandbox(shared: &Shared, waiting: Option<Box<crate::prestart::Waiting>>) -> Result<Taken, InvokeError> {
    let (id, child, launcher_cgroup, ctrl) = match waiting {
        Some(w) => (w.id, w.child, w.cgroup, Some(w.ctrl)),
        None => {
            let l = crate::launchers::Launchers::take(shared)?;
            (l.id, l.child, l.cgroup, None)
        }
    };
    // Until the instance exists, a failure must not leave the groups (or the launcher) behind.
    Ok(Taken { id, child, ctrl, cgroup: GroupGuard(launcher_cgroup) })
}

/// Makes the instance's root directory and puts its groups under the function's limits before its code runs.
fn prepare_root(shared: &Shared, spec: &FunctionSpec, id: &str, cgroup: &GroupGuard) -> Result<PathBuf, InvokeError> {
    let root = shared.instances_dir.join(id);
    let limits = Limits {
        memory_mb: spec.memory_mb,
        pids: shared.config.pids_limit,
        cpu_shares: (spec.memory_mb * 1024 / 128).max(2),
    };
    std::fs::create_dir_all(&root).map_err(|e| InvokeError::internal(format!("instance root: {e}")))?;
    if let Some(cg) = &cgroup.0 {
        cg.limit(limits).map_err(|e| InvokeError::internal(format!("cgroup limits: {e}")))?;
    }
    Ok(root)
}

/// The sandbox's /etc files, with openfc's API names in its hosts when a role forwards that API (its address).
fn etc_files_for(shared: &Shared, spec: &FunctionSpec, id: &str, outbound: bool) -> (Vec<(String, String)>, Option<SocketAddr>) {
    let mut etc_files = crate::network::etc_files(id, shared.config.uid, shared.config.gid, outbound);
    let api_forward = shared.config.api_addr.filter(|_| spec.role.is_some() && shared.config.credentials.is_some());
    if api_forward.is_some()
        && let Some((_, hosts)) = etc_files.iter_mut().find(|(name, _)| name == "hosts")
    {
        hosts.push_str(&crate::apiforward::hosts_line(&spec.account_id, &spec.region));
    }
    (etc_files, api_forward)
}

/// What the sandbox spec of either kind of root is built from, besides the root's own parts.
struct Site<'a> {
    shared: &'a Shared,
    spec: &'a FunctionSpec,
    id: &'a str,
    root: &'a Path,
    outbound: bool,
    etc_files: Vec<(String, String)>,
}

/// The sandbox of a code root (`InstanceRoot::Code`), and the host directories it shows.
fn code_spec(site: Site, launch: &mut Launch, code: PathBuf, layers: Option<PathBuf>) -> (Vec<PathBuf>, openfc_sandbox::Spec) {
    let Site { shared, spec, id, root, outbound, etc_files } = site;
    let uses: Vec<PathBuf> = std::iter::once(code.clone()).chain(layers.clone()).collect();
    let sandbox = openfc_sandbox::Spec {
        root: root.to_path_buf(),
        binds: [(code, PathBuf::from("/code")), (shared.runtime_dir.clone(), PathBuf::from(RUNTIME_MOUNT))]
            .into_iter()
            .chain(layers.map(|d| (d, PathBuf::from("/opt"))))
            .chain(crate::runtime::builtins_bind(shared.config.builtins_dir.as_deref()))
            .collect(),
        tmp_mib: shared.config.tmp_mib,
        hostname: id.to_owned(),
        uid: shared.config.uid,
        gid: shared.config.gid,
        nofile: shared.config.nofile,
        seccomp: true,
        env: env_vec(spec, launch, id),
        argv: std::mem::take(&mut launch.argv),
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

/// The sandbox of a container image's tree (`InstanceRoot::Image`), and the host directory it shows.
fn image_spec(
    site: Site,
    launch: &mut Launch,
    tree: PathBuf,
    plan: &ContainerPlan,
    event: Option<Bytes>,
) -> (Vec<PathBuf>, openfc_sandbox::Spec) {
    let Site { shared, spec, id, root, outbound, etc_files } = site;
    let (base, user) = (shared.config.image_owner_base, &plan.image.user);
    let mut env = container_env(spec, plan, launch, id);
    if let Some(event) = &event {
        env.push(("FC_CUSTOM_CONTAINER_EVENT".into(), String::from_utf8_lossy(event).into_owned()));
    }
    let sandbox = openfc_sandbox::Spec {
        root: root.to_path_buf(),
        binds: Vec::new(),
        tmp_mib: shared.config.tmp_mib,
        hostname: id.to_owned(),
        uid: inside_id(user.uid),
        gid: inside_id(user.gid),
        nofile: shared.config.nofile,
        seccomp: true,
        env,
        argv: std::mem::take(&mut launch.argv),
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

/// Gives the sandbox what it runs: a fresh one its spec (on stdin), a pre-started HTTP runtime its function.
async fn hand_spec(
    ctrl: Option<&UnixStream>,
    protocol: Protocol,
    sandbox: &openfc_sandbox::Spec,
    uses: &[PathBuf],
    stdin: &mut Option<ChildStdin>,
) -> Result<(), InvokeError> {
    match ctrl {
        Some(_) if protocol == Protocol::RuntimeApi => {}
        Some(sock) => activate(sock, sandbox, uses)?,
        None => {
            let mut spec_json = serde_json::to_vec(sandbox).map_err(|e| InvokeError::internal(e.to_string()))?;
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
    Ok(())
}

/// Hands a pre-started runtime its function (package, layers, environment) now that its sandbox is set up.
fn activate(sock: &UnixStream, sandbox: &openfc_sandbox::Spec, uses: &[PathBuf]) -> Result<(), InvokeError> {
    let activation = serde_json::json!({ "env": sandbox.env }).to_string();
    crate::prestart::activate(sock, &uses[0], uses.get(1).map(PathBuf::as_path), &sandbox.blackhole, &activation)?;
    metrics::counter!("openfc_prestarted_runtimes_used_total").increment(1);
    Ok(())
}

/// Keeps the sandbox's output: each line to the function's log file and to the instance's ring (start errors).
fn drain_output(shared: &Shared, child: &mut Child, id: &str, log_file: &Arc<LogFile>) -> Arc<LogRing> {
    let logs = Arc::new(LogRing::new(shared.config.log_ring_bytes));
    for stream in [child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>)].into_iter().flatten() {
        let (logs, id, file) = (logs.clone(), id.to_owned(), log_file.clone());
        tokio::spawn(crate::logs::drain_lines(stream, crate::logs::MAX_LINE, move |line| {
            file.append(&id, &line);
            logs.push(line);
        }));
    }
    logs
}

/// The error of a sandbox that ended while starting: its root goes, its last output says why.
fn sandbox_exited(root: &Path, status: std::process::ExitStatus, logs: &LogRing) -> InvokeError {
    let _ = std::fs::remove_dir(root);
    InvokeError::NotStarted(format!("the sandbox exited ({status}): {}", logs.tail(20).join("\n")))
}

/// Waits for the namespace's init, whose namespace openfc then works in (`None`: a one-shot process ended).
async fn wait_init(
    child: &mut Child,
    pid: u32,
    root: &Path,
    logs: &LogRing,
    deadline: Instant,
    one_shot: bool,
) -> Result<Option<u32>, InvokeError> {
    loop {
        if let Some(p) = init_pid(pid) {
            return Ok(Some(p));
        }
        if let Ok(Some(status)) = child.try_wait() {
            if one_shot {
                return Ok(None);
            }
            return Err(sandbox_exited(root, status, logs));
        }
        if Instant::now() > deadline {
            return Err(InvokeError::NotStarted("the sandbox did not start".into()));
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// The instance's network namespace, which openfc enters to reach the runtime.
fn open_netns(shared: &Shared, init: Option<u32>) -> Result<std::fs::File, InvokeError> {
    match init {
        Some(init) => std::fs::File::open(format!("/proc/{init}/ns/net")),
        // Nothing will connect to a process that has ended; the handle is only kept.
        None => shared.home_netns.try_clone(),
    }
    .map_err(|e| InvokeError::internal(format!("opening the instance network namespace: {e}")))
}

/// Serves openfc's API inside the namespace when the function's role calls for it (`etc_files_for`: its names).
async fn forward_api(
    shared: &Shared,
    netns: &std::fs::File,
    api_forward: Option<SocketAddr>,
    init: Option<u32>,
) -> Result<Option<crate::apiforward::ApiForwarder>, InvokeError> {
    Ok(match (api_forward, init) {
        (Some(api), Some(_)) => Some(
            crate::apiforward::start(netns, &shared.home_netns, api)
                .await
                .map_err(|e| InvokeError::internal(format!("the API forwarder in the instance: {e}")))?,
        ),
        _ => None,
    })
}

/// Serves the Runtime API inside the namespace, then lets the runtime start (activated, or its gate opened).
async fn start_runtime_api(
    shared: &Shared,
    netns: &std::fs::File,
    ctrl: Option<&UnixStream>,
    sandbox: &openfc_sandbox::Spec,
    uses: &[PathBuf],
    stdin: &mut Option<ChildStdin>,
) -> Result<Arc<RuntimeApi>, InvokeError> {
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
    if let Some(sock) = ctrl {
        activate(sock, sandbox, uses)?;
    }
    if let Some(mut pipe) = stdin.take() {
        tokio::io::AsyncWriteExt::write_all(&mut pipe, b"g")
            .await
            .map_err(|e| InvokeError::internal(format!("opening the sandbox's gate: {e}")))?;
    }
    Ok(api)
}

/// Waits for init to fork the runtime, which it does only once its routes are set (slirp4netns must not race them).
async fn wait_runtime_fork(
    child: &mut Child,
    init: u32,
    root: &Path,
    logs: &LogRing,
    deadline: Instant,
    one_shot: bool,
) -> Result<(), InvokeError> {
    while init_pid(init).is_none() {
        if let Ok(Some(status)) = child.try_wait() {
            if one_shot {
                break;
            }
            return Err(sandbox_exited(root, status, logs));
        }
        if Instant::now() > deadline {
            return Err(InvokeError::NotStarted("the sandbox did not start its runtime".into()));
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    Ok(())
}

/// Gives an instance with outbound access its user-mode network stack, counted against the instance's groups.
fn start_slirp(
    shared: &Shared,
    spec: &FunctionSpec,
    init: u32,
    ended: bool,
    cgroup: &GroupGuard,
) -> Result<Option<Child>, InvokeError> {
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
    Ok(slirp)
}

/// Waits for a Runtime-API runtime's first `/next`, the sign it is ready; `Err`: why it is not.
async fn wait_polled(api: &RuntimeApi, deadline: Instant, start_timeout_secs: u64) -> Result<(), String> {
    let why = match api.wait_ready(tokio::time::Instant::from_std(deadline)).await {
        Ready::Polled => return Ok(()),
        Ready::InitError(body) => format!("the runtime reported an init error: {}", String::from_utf8_lossy(&body)),
        Ready::Ended => "the runtime exited before asking for a request".to_owned(),
        Ready::TimedOut => format!(
            "the runtime did not ask for a request (GET /2020-11-11/runtime/invocation/next at FC_RUNTIME_API) within {} s",
            start_timeout_secs
        ),
    };
    Err(why)
}

/// Ends an instance whose runtime did not become ready; the error carries why and the runtime's last output.
async fn failed(instance: Arc<Instance>, why: String) -> Result<Arc<Instance>, InvokeError> {
    instance.kill();
    // Give the output readers a moment to collect the runtime's last words.
    tokio::time::sleep(Duration::from_millis(20)).await;
    Err(InvokeError::NotStarted(format!("{why}. Last output:\n{}", instance.logs.tail(20).join("\n"))))
}

/// Hands the launcher process to a task that waits for its end (and the Runtime API, if any, learns of it at
/// once: an invocation in flight fails then rather than at its timeout), or kills it when asked (or when the
/// instance is dropped).
fn watch_launcher(
    mut child: Child,
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
