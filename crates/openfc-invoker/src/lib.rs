//! Running functions: per function version, a pool of sandboxed instances that share nothing with the host
//! but their read-only code; requests go to an instance with a free concurrency slot, new instances start
//! on demand up to a limit, excess requests wait a bounded time, idle instances stop (scale to zero).
//! The invoker never reads metadata: it receives an immutable `FunctionSpec`.

pub mod cgroup;
mod control;
mod apiforward;
pub mod budget;
mod env;
pub mod exec;
mod instance;
mod java;
mod launchers;
pub mod logs;
mod oneshot;
mod outcome;
mod pool;
mod port;
mod status;
pub mod network;
pub mod logstore;
mod package;
pub mod prestart;
pub mod runtime;
mod runtime_api;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use openfc_core::invocation::FunctionError;
pub use openfc_core::invocation::{FunctionSpec, HttpCall, InvokeError, InvokeOutcome, InvokeRequest, SpecKey};
use openfc_core::ports::CodeStore;
use tokio::sync::{Notify, OwnedSemaphorePermit};

use cgroup::CgroupMode;
use instance::{CallError, Control, ControlHeaders, Hook, HttpTarget, Instance, InstanceRoot};
use runtime::{Interpreters, Markers};
// The body of failures openfc reports itself, shared with the per-event container path (`oneshot`).
pub(crate) use outcome::error_body;

#[derive(Debug, Clone)]
pub struct InvokerConfig {
    pub data_dir: PathBuf,
    pub interpreters: Interpreters,
    /// Most instances per function version (the on-demand config may lower it).
    pub max_instances: u32,
    /// How long a request waits for capacity before it is throttled.
    pub queue_timeout: Duration,
    pub idle_timeout: Duration,
    pub start_timeout_secs: u64,
    /// Sandbox launchers kept started ahead of need (see `launchers`).
    pub warm_sandboxes: usize,
    /// Python and Node.js runtimes kept started per language, waiting for a function (see `prestart`); 0: off.
    pub prestarted_runtimes: usize,
    /// openfc's memory for function responses in flight, in MiB (`budget`).
    pub response_memory_mb: usize,
    /// Mints the temporary credentials of a service's role (openfc's STS); `None`: functions get none.
    pub credentials: Option<Arc<dyn openfc_core::invocation::CredentialIssuer>>,
    /// openfc's own API address: instances of functions with a role reach it at the FC endpoint names
    /// (`ACCOUNT.REGION[-internal].fc.aliyuncs.com`, port 80) through a forwarder in their namespace.
    pub api_addr: Option<std::net::SocketAddr>,
    pub tmp_mib: u64,
    pub pids_limit: u64,
    pub nofile: u64,
    pub uid: u32,
    pub gid: u32,
    pub log_ring_bytes: usize,
    pub max_unzipped: u64,
    /// slirp4netns, which gives instances with `internetAccess` outbound network; `None`: loopback only.
    pub slirp4netns: Option<PathBuf>,
    /// Networks instances with outbound network may reach although they are blocked by default
    /// (`network::DEFAULT_BLOCKED`: private ranges, cloud metadata; the host's own addresses).
    pub outbound_allow: Vec<openfc_sandbox::Net>,
    /// The image store of custom-container functions (`None`: they cannot run here).
    pub images: Option<Arc<openfc_image::store::ImageStore>>,
    /// Image uid/gid N runs as host uid/gid base + N (never root); `None`: as N (openfc not root).
    pub image_owner_base: Option<u32>,
    /// How long a container's server has to listen on caPort (containers.md §4.5).
    pub container_start_timeout_secs: u64,
    /// The nodes sharing the database: a function's maximumInstanceCount is split between them.
    pub cluster: Arc<openfc_core::cluster::Cluster>,
    /// The runtime built-ins directory (`openfc runtimes install`), shown read-only at
    /// `runtime::BUILTINS_MOUNT` in code-runtime instances; `None`: not shown.
    pub builtins_dir: Option<PathBuf>,
}

/// What instances need from the invoker.
pub struct Shared {
    pub config: InvokerConfig,
    pub logs_dir: PathBuf,
    pub cgroups: CgroupMode,
    pub runtime_dir: PathBuf,
    pub instances_dir: PathBuf,
    pub self_exe: PathBuf,
    pub home_netns: std::fs::File,
    /// What instances with outbound network must not reach (`network::blackholes`).
    pub blackhole: Vec<openfc_sandbox::Net>,
    pub launchers: launchers::Launchers,
    pub prestarted: prestart::Prestarted,
    /// The Python shim is compiled (`runtime::compile_python_shim`); done in the background at start.
    pub python_bytecode: std::sync::atomic::AtomicBool,
    /// The Java shim is built and current (`runtime::build_java_shim`): later Java cold starts skip the
    /// lock, the source hash and the stamp read.
    pub java_shim_built: std::sync::atomic::AtomicBool,
    /// The start-up work on the shims (compiling the Python one) is over: runtimes may be pre-started.
    pub shims_ready: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// Most instances of `spec` on this node: its maximumInstanceCount is cluster-wide, so this node takes
    /// its share (at least one); `--max-instances` is this node's own limit.
    fn instance_cap(&self, spec: &FunctionSpec) -> usize {
        let node_max = self.config.max_instances as usize;
        match spec.max_instances {
            None => node_max,
            Some(m) => {
                let salt = openfc_core::cluster::salt(&[&spec.account_id, &spec.service, &spec.function]);
                self.config.cluster.cap(m as usize, salt).min(node_max)
            }
        }
    }
}

pub struct Invoker {
    shared: Arc<Shared>,
    packages: Arc<package::Packages>,
    pools: Mutex<HashMap<SpecKey, Arc<Pool>>>,
    /// One writer per function log file, shared by the pools of all its versions: two writers of one file
    /// would each rotate it on their own count and lose the other's lines.
    log_files: Mutex<HashMap<PathBuf, std::sync::Weak<logstore::LogFile>>>,
}

pub(crate) struct Pool {
    log: Arc<logstore::LogFile>,
    /// Instances kept warm whatever the traffic (a provision config's target).
    provisioned: std::sync::atomic::AtomicUsize,
    /// Requests waiting for a slot.
    waiting: std::sync::atomic::AtomicUsize,
    instances: Mutex<Vec<Arc<Instance>>>,
    starting: Mutex<usize>,
    capacity_freed: Notify,
    /// Non-web container events running now (each is its own instance; `oneshot`).
    one_shots: std::sync::atomic::AtomicUsize,
    /// The pre-stop hook's timeout, when the function has one (its handler is among `fixed_headers`).
    pre_stop: Option<u64>,
    /// The `x-fc-*` headers every control request of this function version carries, built once:
    /// per request only the request id, path and qualifier differ.
    fixed_headers: ControlHeaders,
    /// What one instance serves at once: the function's setting, capped by its runtime (PHP: one).
    concurrency: usize,
    /// `openfc_invocations_total` of this function by outcome, registered at its first use (a function's
    /// labels are cloned once, not per request).
    invocations: [std::sync::OnceLock<metrics::Counter>; 3],
    account: String,
    service: String,
    function: String,
    /// `LATEST` or the published version this pool runs (ListInstances' `versionId`).
    version: String,
}

/// FC's closing line of an invocation's log tail.
pub(crate) fn report_line(duration: Duration, memory_mb: u64, max_memory_mb: u64) -> String {
    format!(
        "Duration: {:.2} ms, Billed Duration: {} ms, Memory Size: {memory_mb} MB, Max Memory Used: {max_memory_mb} MB",
        duration.as_secs_f64() * 1000.0,
        duration.as_millis().max(1),
    )
}

/// Response headers a function may not set (hop-by-hop, framing, or FC's own).
pub(crate) fn reserved_header(name: &str) -> bool {
    name.starts_with("x-fc-")
        || matches!(name, "connection" | "content-length" | "date" | "keep-alive" | "server" | "transfer-encoding" | "upgrade")
}

impl Pool {
    fn count_invocation(&self, error: Option<FunctionError>) {
        let (i, outcome) = match error {
            None => (0, "success"),
            Some(FunctionError::Handled) => (1, "handled_error"),
            Some(FunctionError::Unhandled) => (2, "unhandled_error"),
        };
        self.invocations[i]
            .get_or_init(|| {
                metrics::counter!("openfc_invocations_total", "account" => self.account.clone(),
                    "service" => self.service.clone(), "function" => self.function.clone(), "outcome" => outcome)
            })
            .increment(1);
    }
}

impl Invoker {
    /// The temporary credentials an invocation of `spec` carries (its service's role), freshly minted.
    fn credentials(&self, spec: &FunctionSpec) -> Option<openfc_core::invocation::Credentials> {
        let (role, issuer) = (spec.role.as_deref()?, self.shared.config.credentials.as_ref()?);
        Some(issuer.issue(&spec.account_id, role))
    }

    pub fn new(config: InvokerConfig, store: Arc<dyn CodeStore>) -> std::io::Result<Arc<Invoker>> {
        budget::configure(config.response_memory_mb);
        let run = config.data_dir.join("run");
        let runtime_dir = run.join("runtime");
        let instances_dir = run.join("instances");
        // Old instance roots from a previous process are empty directories; start clean.
        let _ = std::fs::remove_dir_all(&instances_dir);
        std::fs::create_dir_all(&instances_dir)?;
        runtime::install_shims(&runtime_dir)?;
        let packages = Arc::new(package::Packages::new(run.join("packages"), store, config.max_unzipped));
        let shared = Arc::new(Shared {
            logs_dir: config.data_dir.join("logs"),
            // One group per data directory: several openfc processes may share a host.
            cgroups: CgroupMode::detect(&format!("{:016x}", openfc_core::code::crc64(std::fs::canonicalize(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone()).to_string_lossy().as_bytes()))),
            runtime_dir,
            instances_dir,
            self_exe: std::env::current_exe()?,
            home_netns: std::fs::File::open("/proc/self/ns/net")?,
            blackhole: network::blackholes(&openfc_sandbox::host_addresses(), &config.outbound_allow),
            launchers: launchers::Launchers::new(config.warm_sandboxes),
            prestarted: prestart::Prestarted::new(config.prestarted_runtimes),
            python_bytecode: std::sync::atomic::AtomicBool::new(false),
            java_shim_built: std::sync::atomic::AtomicBool::new(false),
            shims_ready: std::sync::atomic::AtomicBool::new(false),
            config,
        });
        {
            let shared = shared.clone();
            tokio::task::spawn_blocking(move || {
                if runtime::compile_python_shim(&shared.runtime_dir, &shared.config.interpreters.python) {
                    shared.python_bytecode.store(true, std::sync::atomic::Ordering::Release);
                } else {
                    tracing::info!(python = %shared.config.interpreters.python.display(),
                        "could not precompile the Python shim; Python instances compile it at each start");
                }
                shared.shims_ready.store(true, std::sync::atomic::Ordering::Release);
                prestart::Prestarted::refill(&shared);
            });
        }
        launchers::Launchers::refill(&shared);
        let invoker = Arc::new(Invoker { shared, packages, pools: Mutex::new(HashMap::new()), log_files: Mutex::new(HashMap::new()) });
        let weak = Arc::downgrade(&invoker);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut ticks: u64 = 0;
            loop {
                tick.tick().await;
                ticks += 1;
                match weak.upgrade() {
                    Some(inv) => {
                        inv.reap_idle().await;
                        // Replaces waiting runtimes that died (and any a failed refill left missing).
                        prestart::Prestarted::refill(&inv.shared);
                        if ticks.is_multiple_of(60) {
                            inv.sweep_packages();
                        }
                        let (alive, busy) = inv.instance_counts();
                        metrics::gauge!("openfc_instances", "state" => "alive").set(alive as f64);
                        metrics::gauge!("openfc_instances", "state" => "busy").set(busy as f64);
                        metrics::gauge!("openfc_instances", "state" => "idle").set((alive - busy) as f64);
                        metrics::gauge!("openfc_warm_sandboxes").set(inv.warm_sandboxes() as f64);
                    }
                    None => return,
                }
            }
        });
        Ok(invoker)
    }

    /// The image store, when this invoker runs custom-container functions.
    pub fn image_store(&self) -> Option<&Arc<openfc_image::store::ImageStore>> {
        self.shared.config.images.as_ref()
    }

    /// The flattened tree of a container function's image on this node (built from the blobs when missing).
    async fn image_tree(&self, plan: &openfc_core::images::ContainerPlan, timeout_secs: u64) -> Result<PathBuf, InvokeError> {
        let store = self.shared.config.images.as_ref().ok_or_else(|| {
            InvokeError::NotStarted("this openfc has no image store for custom-container functions".into())
        })?;
        let wait = Duration::from_secs(timeout_secs.max(1));
        match tokio::time::timeout(wait, store.rootfs(&plan.reference, &plan.image)).await {
            Ok(result) => result.map_err(|e| InvokeError::NotStarted(format!("preparing the image: {e}"))),
            Err(_) => Err(InvokeError::NotStarted(format!(
                "the image '{}' is not on this node yet and could not be prepared within {} s; try again",
                plan.reference,
                wait.as_secs()
            ))),
        }
    }

    async fn start_instance(&self, spec: &FunctionSpec, pool: &Pool) -> Result<Arc<Instance>, InvokeError> {
        let python_bytecode = self.shared.python_bytecode.load(std::sync::atomic::Ordering::Acquire);
        let launch = runtime::command(spec, &self.shared.config.interpreters, python_bytecode)?;
        if let runtime::Program::Shim { interpreter: runtime::Interpreter::Java, .. } = launch.runtime.program
            && !self.shared.java_shim_built.load(std::sync::atomic::Ordering::Acquire)
        {
            let (dir, java, name) = (self.shared.runtime_dir.clone(), self.shared.config.interpreters.java.clone(), spec.runtime.clone());
            tokio::task::spawn_blocking(move || runtime::build_java_shim(&dir, &java, &name))
                .await
                .map_err(|e| InvokeError::internal(format!("building the Java shim: {e}")))??;
            self.shared.java_shim_built.store(true, std::sync::atomic::Ordering::Release);
        }
        let t0 = Instant::now();
        let root = match &spec.container {
            Some(plan) => {
                let tree = self.image_tree(plan, spec.timeout_secs).await?;
                metrics::histogram!("openfc_cold_start_seconds", "phase" => "image").record(t0.elapsed().as_secs_f64());
                InstanceRoot::Image { tree, plan: plan.clone(), event: None }
            }
            None => {
                let code = self.packages.unpacked(&spec.code).await?;
                if matches!(launch.runtime.program, runtime::Program::Handler) {
                    runtime::ensure_executable(&code, &spec.handler)?;
                }
                let layers = if spec.layers.is_empty() { None } else { Some(self.packages.merged_layers(&spec.layers).await?) };
                metrics::histogram!("openfc_cold_start_seconds", "phase" => "unpack").record(t0.elapsed().as_secs_f64());
                let waiting = match launch.runtime.program {
                    // A function with a role reaches openfc's API from inside (`instance`: the API's host names in
                    // its /etc/hosts, fixed when the sandbox is built): a generic pre-started sandbox has not them.
                    _ if spec.role.is_some() => None,
                    runtime::Program::Shim { interpreter, .. } => prestart::Kind::of(interpreter, spec, &code)
                        .and_then(|kind| self.shared.prestarted.take(kind, &self.shared.instances_dir)),
                    _ => None,
                };
                match waiting {
                    Some(waiting) => InstanceRoot::Prestarted { waiting: Box::new(waiting), code, layers },
                    None => InstanceRoot::Code { code, layers },
                }
            }
        };
        let fallback = match &root {
            InstanceRoot::Prestarted { code, layers, .. } => Some((code.clone(), layers.clone())),
            _ => None,
        };
        let mut started = Instance::start(&self.shared, spec, launch, root, pool.log.clone()).await;
        // A waiting runtime that died just before it got its function: start one afresh rather than fail the
        // request (the function's own code has not run yet, so this is never a retry of user code).
        if let (Err(InvokeError::NotStarted(why)), Some((code, layers))) = (&started, fallback) {
            tracing::warn!(function = %spec.function, error = %why, "a pre-started runtime could not take its function; starting one afresh");
            let launch = runtime::command(spec, &self.shared.config.interpreters, python_bytecode)?;
            started = Instance::start(&self.shared, spec, launch, InstanceRoot::Code { code, layers }, pool.log.clone()).await;
        }
        // Replace the warm launcher (or pre-started runtime) this start used, now that the start no longer
        // competes for the CPU.
        launchers::Launchers::refill(&self.shared);
        prestart::Prestarted::refill(&self.shared);
        let inst = started?;
        let t1 = Instant::now();
        if !spec.initializer.is_empty() {
            let req = Control {
                hook: Hook::Initialize,
                request_id: uuid::Uuid::new_v4().to_string(),
                qualifier: spec.qualifier.clone(),
                body: Bytes::new(),
                http: None,
                credentials: self.credentials(spec),
            };
            let limit = Duration::from_secs(spec.initialization_timeout_secs.max(1));
            let failure = match inst.call(&self.shared, &pool.fixed_headers, req, limit).await {
                Ok(r) if r.status == 200 => None,
                Ok(r) => Some(String::from_utf8_lossy(&r.body).into_owned()),
                Err(CallError::Timeout) => Some(format!("the initializer timed out after {} s", limit.as_secs())),
                Err(CallError::Broken(e)) => Some(format!("the runtime failed during initialization: {e}")),
            };
            if let Some(why) = failure {
                inst.kill();
                return Err(InvokeError::NotStarted(format!("Initializer failed: {why}")));
            }
        }
        if !spec.initializer.is_empty() {
            metrics::histogram!("openfc_cold_start_seconds", "phase" => "initializer").record(t1.elapsed().as_secs_f64());
        }
        metrics::histogram!("openfc_cold_start_seconds", "phase" => "total").record(t0.elapsed().as_secs_f64());
        tracing::info!(instance = %inst.id, function = %spec.function, service = %spec.service,
            cold_start_ms = t0.elapsed().as_secs_f64() * 1000.0, "instance started");
        Ok(inst)
    }

    /// Runs one synchronous invocation.
    pub async fn invoke(&self, spec: &FunctionSpec, req: InvokeRequest) -> Result<InvokeOutcome, InvokeError> {
        if let Some(plan) = spec.container.as_ref().filter(|p| !p.web_server_mode) {
            return self.invoke_once(spec, plan, req).await;
        }
        let pool = self.pool(spec);
        let (inst, slot) = self.acquire(spec, &pool).await?;
        inst.touch();
        // Peak memory is per instance; per request only when the instance serves one at a time.
        if let Some(cg) = &inst.cgroup
            && spec.instance_concurrency <= 1
        {
            cg.reset_peak();
        }
        let want_log = req.want_log;
        // The markers bound this invocation's lines in the instance's ring, which only a log tail cuts: without
        // one they are neither formatted nor pushed (a runtime shim prints its own either way).
        let markers = want_log
            .then(|| (format!("FC Invoke Start RequestId: {}", req.request_id), format!("FC Invoke End RequestId: {}", req.request_id)));
        if let Some((start_marker, _)) = &markers
            && inst.markers == Markers::Openfc
        {
            inst.logs.push(start_marker.clone());
        }
        let started = Instant::now();
        let is_http = req.http.is_some();
        let http = match req.http {
            None => None,
            Some(call) => Some(HttpTarget {
                method: call.method,
                uri: call.uri.parse().map_err(|e| InvokeError::internal(format!("request URI: {e}")))?,
                headers: call.headers,
            }),
        };
        let control = Control {
            hook: Hook::Invoke,
            request_id: req.request_id.clone(),
            qualifier: spec.qualifier.clone(),
            body: req.event,
            http,
            credentials: self.credentials(spec),
        };
        let limit = Duration::from_secs(spec.timeout_secs.max(1));
        let result = inst.call(&self.shared, &pool.fixed_headers, control, limit).await;
        let duration = started.elapsed();
        // Idle time counts from the end of the last request.
        inst.touch();
        let failed = !matches!(&result, Ok(r) if r.status == 200);
        let oom = failed && inst.cgroup.as_ref().is_some_and(|c| c.oom_kills() > 0);
        let max_memory_mb = inst.cgroup.as_ref().and_then(|c| c.memory_peak()).map_or(0, |b| b.div_ceil(1024 * 1024));
        let outcome = match result {
            Ok(r) => {
                // Only a log tail needs the shim's end marker in the ring (finding it scans the ring).
                if let Some((_, end_marker)) = &markers
                    && inst.markers == Markers::Runtime
                {
                    inst.logs.wait_for(end_marker, Duration::from_millis(100)).await;
                }
                outcome::answered(r, is_http)
            }
            Err(CallError::Timeout) => {
                inst.kill();
                let msg = outcome::timeout_message(spec.timeout_secs, max_memory_mb);
                inst.logs.push(format!("FC Invoke End RequestId: {}, Error: {msg}", req.request_id));
                outcome::failure("FunctionTimeoutError", &msg)
            }
            Err(CallError::Broken(e)) => {
                // Let the process finish dying and its output drain, then say what happened.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let oom = oom || inst.cgroup.as_ref().is_some_and(|c| c.oom_kills() > 0);
                let code = inst.exit_code();
                inst.kill();
                let (kind, msg) = outcome::crash(oom, spec.memory_mb, code, &e, &inst.logs.tail(10));
                inst.logs.push(format!("FC Invoke End RequestId: {}, Error: {msg}", req.request_id));
                outcome::failure(kind, &msg)
            }
        };
        if let Some((_, end_marker)) = &markers
            && inst.markers == Markers::Openfc
            && !inst.exited()
        {
            // A custom runtime's output may trail its response by a moment; let the pipe go quiet.
            inst.logs.wait_quiet(Duration::from_millis(1), Duration::from_millis(5)).await;
            inst.logs.push(end_marker.clone());
        }
        if oom && !inst.exited() {
            inst.kill();
        }
        drop(slot);
        let log = match &markers {
            Some((start_marker, end_marker)) => {
                let mut lines = inst.logs.segment(start_marker, end_marker);
                lines.push(report_line(duration, spec.memory_mb, max_memory_mb));
                lines.join("\n")
            }
            None => String::new(),
        };
        let outcome::Answer { status, headers, body, content_type, error } = outcome;
        pool.count_invocation(error);
        Ok(InvokeOutcome { status, headers, body, content_type, error, duration, max_memory_mb, log, instance_id: inst.id.clone() })
    }

    /// Stops instances idle past the idle timeout (running preStop first), never one with a request in flight,
    /// and never below the pool's provisioned count.
    fn shared_log_file(&self, spec: &FunctionSpec) -> Arc<logstore::LogFile> {
        let path = logstore::log_path(&self.shared.logs_dir, &spec.account_id, &spec.service, &spec.function);
        let mut files = self.log_files.lock().expect("log files");
        files.retain(|_, f| f.strong_count() > 0);
        if let Some(f) = files.get(&path).and_then(std::sync::Weak::upgrade) {
            return f;
        }
        let f = Arc::new(logstore::LogFile::new(path.clone()));
        files.insert(path, Arc::downgrade(&f));
        f
    }

    /// Removes unpacked packages no instance has used for ten minutes (off the async threads).
    fn sweep_packages(&self) {
        let in_use = self.paths_in_use();
        let packages = self.packages.clone();
        tokio::task::spawn_blocking(move || {
            let removed = packages.sweep(&in_use, Duration::from_secs(600));
            if removed > 0 {
                tracing::info!(removed, "removed unpacked packages no instance uses");
            }
        });
    }

    /// Stops every instance and warm sandbox launcher (shutdown).
    pub fn stop_all(&self) {
        self.shared.launchers.discard_all();
        self.shared.prestarted.discard_all(&self.shared.instances_dir);
        for pool in self.pools.lock().expect("pools").values() {
            for inst in pool.instances.lock().expect("instances").drain(..) {
                inst.kill();
            }
        }
    }
}

