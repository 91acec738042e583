//! The invocation seam: one use case turns a caller's (service, function, qualifier) into the immutable
//! `FunctionSpec` of what runs — FC defaults applied here, once — and hands it to the `Invoker` port.
//! InvokeFunction, HTTP triggers, the provisioning reconciler, the async workers (async invocations, timer
//! fires, destinations; `asyncq`) and custom domains invoke through `Fc::prepare` and `Fc::invoke`; none builds a spec or calls the invoker itself. Core can thus be tested with a fake
//! invoker, and the invoker never reads metadata.
//!
//! HTTP-trigger calls carry the `http` crate's plain types (method, header map): HTTP is what such a call
//! is, and those types are not a framework.

use std::collections::BTreeMap;
use std::hash::BuildHasher as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{CoreError, CoreResult};
use crate::function::FunctionFields;
use crate::invoke::InvokeTarget;
use crate::names::{FunctionName, Qualifier, ServiceName};
use crate::ports::CodeRef;
use crate::usecase::Fc;

/// Identity of what runs: instances are shared only between requests whose specs have the same key. It
/// names the function state (its etag and its service's, whose internetAccess and logConfig shape the
/// instance), so an update starts new instances and old ones drain away.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpecKey(String);

impl SpecKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SpecKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A function as the invoker runs it: resolved (qualifier followed), FC defaults applied, immutable.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    pub key: SpecKey,
    pub account_id: String,
    pub region: String,
    pub service: String,
    pub function: String,
    pub qualifier: String,
    /// The published version that runs; empty for LATEST.
    pub version_id: String,
    pub runtime: String,
    pub handler: String,
    pub initializer: String,
    pub initialization_timeout_secs: u64,
    pub timeout_secs: u64,
    pub memory_mb: u64,
    pub instance_concurrency: u32,
    pub ca_port: u16,
    pub env: BTreeMap<String, String>,
    pub custom_command: Vec<String>,
    pub custom_args: Vec<String>,
    pub code: CodeRef,
    /// Layer packages, merged in order and shown read-only at `/opt`.
    pub layers: Vec<CodeRef>,
    pub pre_stop_handler: String,
    pub pre_stop_timeout_secs: u64,
    pub log_project: String,
    pub log_store: String,
    /// The on-demand config's `maximumInstanceCount`, when set.
    pub max_instances: Option<u32>,
    /// The service's `internetAccess`: outbound network (else loopback only).
    pub internet_access: bool,
    /// The service's `tracingConfig` (Jaeger) collector endpoint: invocations then carry a span context.
    pub tracing_endpoint: Option<String>,
    /// A custom-container function: its pulled image and what runs (`code` is then empty).
    pub container: Option<Arc<crate::images::ContainerPlan>>,
    /// The openfc role named by the service's `role` (`acs:ram::ACCOUNT:role/NAME` of its own account): its
    /// invocations carry temporary credentials scoped to the role's policy.
    pub role: Option<String>,
}

/// Temporary credentials a function receives for its service's role (`context.credentials`).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub access_key_secret: String,
    pub security_token: String,
}

/// Mints temporary credentials for a role (openfc's STS); the invoker asks it per invocation of a function
/// whose service has a role.
pub trait CredentialIssuer: Send + Sync + std::fmt::Debug {
    fn issue(&self, account: &str, role: &str) -> Credentials;
}

/// The role name a service's `role` ARN gives, when it names one of `account`'s roles (FC's form
/// `acs:ram::ACCOUNT:role/NAME`, the name in any case as RAM treats it). Anything else names no openfc role.
pub fn role_name(account: &str, arn: &str) -> Option<String> {
    let rest = arn.trim().strip_prefix("acs:ram::")?;
    let (owner, name) = rest.split_once(":role/")?;
    (owner == account && !name.is_empty() && !name.contains('/')).then(|| name.to_ascii_lowercase())
}

/// One invocation.
pub struct InvokeRequest {
    pub request_id: String,
    /// An HTTP-trigger request (method, the URI the function sees, client headers); `None` for an event.
    pub http: Option<HttpCall>,
    /// The caller wants the log (`X-Fc-Log-Type: Tail`): wait for the runtime's output to drain.
    pub want_log: bool,
    pub event: Bytes,
}

pub struct HttpCall {
    pub method: http::Method,
    pub uri: String,
    pub headers: http::HeaderMap,
}

/// How a function failed (FC's `X-Fc-Error-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionError {
    /// The function reported the error itself.
    Handled,
    /// It crashed, timed out, ran out of memory, or its runtime answered garbage.
    Unhandled,
}

impl FunctionError {
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionError::Handled => "HandledInvocationError",
            FunctionError::Unhandled => "UnhandledInvocationError",
        }
    }
}

/// What a function made of an invocation. Function failures are outcomes, not errors.
pub struct InvokeOutcome {
    /// The function's status and headers (HTTP-trigger requests; events answer 200).
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub content_type: Option<String>,
    pub error: Option<FunctionError>,
    pub duration: Duration,
    pub max_memory_mb: u64,
    /// The invocation's log lines (markers included), for `X-Fc-Log-Result`.
    pub log: String,
    pub instance_id: String,
}

/// Why the invoker could not run an invocation at all.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("{0}")]
    UnsupportedRuntime(String),
    #[error("The function either cannot be started or exited. {0}")]
    NotStarted(String),
    #[error("{0}")]
    Throttled(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl InvokeError {
    pub fn internal(msg: impl Into<String>) -> Self {
        InvokeError::Internal(msg.into())
    }
}

impl From<InvokeError> for CoreError {
    fn from(e: InvokeError) -> Self {
        match e {
            InvokeError::UnsupportedRuntime(m) => CoreError::InvalidArgument(m),
            InvokeError::NotStarted(_) => CoreError::FunctionNotStarted(e.to_string()),
            InvokeError::Throttled(m) => CoreError::Throttled(m),
            InvokeError::Internal(m) => CoreError::Internal(format!("invoker: {m}")),
        }
    }
}

/// The port to whatever runs functions (openfc-invoker's sandboxes; a fake in tests).
#[async_trait]
pub trait Invoker: Send + Sync {
    /// Refuses, naming it, a runtime this invoker cannot run (checked before an async request is accepted).
    fn check_runtime(&self, runtime: &str) -> Result<(), InvokeError>;
    /// Runs one invocation to its end.
    async fn invoke(&self, spec: &FunctionSpec, req: InvokeRequest) -> Result<InvokeOutcome, InvokeError>;
    /// Keeps `target` instances of `spec` running; returns how many run.
    async fn ensure_warm(&self, spec: &FunctionSpec, target: usize) -> Result<usize, InvokeError>;
    /// How many instances of this spec are alive.
    fn alive(&self, key: &SpecKey) -> usize;
    /// Every instance alive on this node (what ListInstances reports through the cluster).
    fn instances(&self) -> Vec<crate::cluster::InstanceInfo> {
        Vec::new()
    }
}

/// What a caller's target resolved to, ready to run.
pub struct Prepared {
    pub spec: Arc<FunctionSpec>,
    /// The version that runs, or `None` for LATEST.
    pub version: Option<u64>,
}

impl Prepared {
    /// `X-Fc-Invocation-Service-Version`.
    pub fn version_label(&self) -> String {
        self.version.map_or_else(|| "LATEST".to_owned(), |v| v.to_string())
    }
}

/// The runtime-facing description of what runs, from the stored function and service, with FC's
/// defaults (spec §5.3) for every unset field.
fn function_spec(
    region: &str,
    account: &str,
    target: &InvokeTarget,
    fields: FunctionFields,
    container: Option<Arc<crate::images::ContainerPlan>>,
) -> CoreResult<FunctionSpec> {
    let f = &target.function;
    let code = match (&f.code, &container) {
        (Some(code), _) => code.clone(),
        (None, Some(_)) => CodeRef { key: String::new(), checksum: 0, size: 0 },
        (None, None) => return Err(CoreError::invalid(format!("function '{}' has no code package to run", f.name))),
    };
    let log = target.service.config.get("logConfig");
    let log_field = |k: &str| log.and_then(|l| l.get(k)).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    let version = target.version.map_or("LATEST".to_owned(), |v| v.to_string());
    let lifecycle = fields.instance_lifecycle_config.clone().unwrap_or_default();
    Ok(FunctionSpec {
        key: SpecKey(format!("{account}/{}/{}@{version}#{}#{}", f.service_name, f.name, f.etag, target.service.etag)),
        account_id: account.to_owned(),
        region: region.to_owned(),
        service: f.service_name.clone(),
        function: f.name.clone(),
        qualifier: target.qualifier.clone(),
        version_id: target.version.map(|v| v.to_string()).unwrap_or_default(),
        runtime: fields.runtime.unwrap_or_default(),
        handler: fields.handler.unwrap_or_default(),
        initializer: fields.initializer.unwrap_or_default(),
        initialization_timeout_secs: fields.initialization_timeout.unwrap_or(3).max(1) as u64,
        timeout_secs: fields.timeout.unwrap_or(3).max(1) as u64,
        memory_mb: fields.memory_size.unwrap_or(128).max(64) as u64,
        instance_concurrency: fields.instance_concurrency.unwrap_or(1).max(1) as u32,
        ca_port: fields.ca_port.unwrap_or(9000).clamp(1, 65535) as u16,
        env: fields.environment_variables.unwrap_or_default(),
        custom_command: fields.custom_runtime_config.as_ref().map(|c| c.command.clone()).unwrap_or_default(),
        custom_args: fields.custom_runtime_config.as_ref().map(|c| c.args.clone()).unwrap_or_default(),
        code,
        layers: target.layers.clone(),
        pre_stop_handler: lifecycle.pre_stop.handler,
        pre_stop_timeout_secs: lifecycle.pre_stop.timeout.max(1) as u64,
        log_project: log_field("project"),
        log_store: log_field("logstore"),
        max_instances: target.max_instances,
        internet_access: target.service.config.get("internetAccess").and_then(|v| v.as_bool()).unwrap_or(true),
        tracing_endpoint: tracing_endpoint(&target.service.config),
        container,
        role: target.service.config.get("role").and_then(|v| v.as_str()).and_then(|arn| role_name(account, arn)),
    })
}

/// A service's Jaeger collector, when its `tracingConfig` enables tracing (`params.endpoint`).
fn tracing_endpoint(service_config: &serde_json::Value) -> Option<String> {
    let t = service_config.get("tracingConfig")?;
    if t.get("type").and_then(|v| v.as_str()) != Some("Jaeger") {
        return None;
    }
    t.get("params")?.get("endpoint")?.as_str().filter(|e| !e.is_empty()).map(str::to_owned)
}

/// The cache key of a prepared spec: everything `function_spec` reads that can change.
pub type PreparedKey = (String, String, String, Option<u64>, String, String, String, Option<u32>);

/// Hashes `PreparedKey`s (borrowed) for the spec cache; keyed per process.
static SPEC_KEYS: std::sync::LazyLock<std::hash::RandomState> = std::sync::LazyLock::new(std::hash::RandomState::new);

impl Fc {
    /// Resolves what a request to (service, function, qualifier) runs — alias weights rolled per call — and
    /// its spec, built once per function state (it parses the stored config). The runtime is checked here,
    /// so an async request for a runtime this invoker cannot run is refused before it is accepted.
    pub async fn prepare(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
    ) -> CoreResult<Prepared> {
        let target = self.invoke_target(account, service, function, q).await?;
        self.prepared(account, &target).await
    }

    /// What `prepare` checks before an asynchronous request is accepted — the target exists, its runtime runs
    /// here, a non-web image can be given the event — without waiting for an image still being pulled.
    pub async fn check_invocable(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
        event: &[u8],
    ) -> CoreResult<()> {
        let target = self.invoke_target(account, service, function, q).await?;
        let fields: FunctionFields = serde_json::from_value(target.function.config.clone())
            .map_err(|e| CoreError::Internal(format!("stored function config unreadable: {e}")))?;
        self.invoker.check_runtime(fields.runtime.as_deref().unwrap_or(""))?;
        if crate::images::non_web_container(&target.function.config) {
            crate::images::check_non_web_event(event)?;
        }
        Ok(())
    }

    /// As `prepare`, always on an alias's main version (provisioning).
    pub async fn prepare_main(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
    ) -> CoreResult<Prepared> {
        let target = self.invoke_target_routed(account, service, function, q, 1.0).await?;
        self.prepared(account, &target).await
    }

    async fn prepared(&self, account: &str, target: &InvokeTarget) -> CoreResult<Prepared> {
        let f = &target.function;
        // The key borrowed: a hit (every warm invocation) copies none of its strings.
        let parts = (
            account,
            f.service_name.as_str(),
            f.name.as_str(),
            target.version,
            f.etag.as_str(),
            target.service.etag.as_str(),
            target.qualifier.as_str(),
            target.max_instances,
        );
        let hash = SPEC_KEYS.hash_one(parts);
        let cached = self.hot.specs.get_with(&hash, |(key, spec)| {
            let same = (
                key.0.as_str(),
                key.1.as_str(),
                key.2.as_str(),
                key.3,
                key.4.as_str(),
                key.5.as_str(),
                key.6.as_str(),
                key.7,
            ) == parts;
            same.then(|| spec.clone())
        });
        let spec = match cached {
            Some(spec) => spec,
            None => {
                let fields: FunctionFields = serde_json::from_value(f.config.clone())
                    .map_err(|e| CoreError::Internal(format!("stored function config unreadable: {e}")))?;
                // Before anything else: a runtime the invoker cannot run.
                self.invoker.check_runtime(fields.runtime.as_deref().unwrap_or(""))?;
                let container = match fields.custom_container_config.as_ref().filter(|_| fields.is_container()) {
                    Some(config) => Some(Arc::new(self.container_plan(f, config, &fields).await?)),
                    None => None,
                };
                let spec = Arc::new(function_spec(&self.region, account, target, fields, container)?);
                let key: PreparedKey = (
                    account.to_owned(),
                    f.service_name.clone(),
                    f.name.clone(),
                    target.version,
                    f.etag.clone(),
                    target.service.etag.clone(),
                    target.qualifier.clone(),
                    target.max_instances,
                );
                // A key whose hash collides with another's takes its place: both stay correct, the other
                // is built again at its next use.
                // Specs are never invalidated (a state's spec never changes): the epoch does not move.
                self.hot.specs.put(self.hot.specs.epoch(), hash, (key, spec.clone()));
                spec
            }
        };
        Ok(Prepared { spec, version: target.version })
    }

    /// The image a container function runs, waiting (up to the function's timeout) while it is pulled.
    async fn container_plan(
        &self,
        f: &crate::ports::FunctionRecord,
        config: &crate::function::CustomContainerConfig,
        fields: &FunctionFields,
    ) -> CoreResult<crate::images::ContainerPlan> {
        let images = self.images.as_ref().ok_or_else(|| {
            CoreError::FunctionNotStarted("this openfc runs no custom-container functions (no image store)".into())
        })?;
        // Functions stored before openfc ran images name no pull: an UpdateFunction carrying the config starts one.
        let pull = crate::images::pull_of(&f.config).ok_or_else(|| {
            CoreError::FunctionNotStarted(format!(
                "the image of function '{}' was never pulled: update the function with its customContainerConfig to pull it",
                f.name
            ))
        })?;
        let wait = Duration::from_secs(fields.timeout.unwrap_or(3).max(1) as u64);
        let image = images.ready(pull, &config.image, wait).await?;
        crate::images::ContainerPlan::new(image, config, &config.image)
    }

    /// Runs a prepared invocation to its end.
    pub async fn invoke(&self, prepared: &Prepared, req: InvokeRequest) -> CoreResult<InvokeOutcome> {
        if prepared.spec.container.as_ref().is_some_and(|c| !c.web_server_mode) {
            if req.http.is_some() {
                return Err(CoreError::invalid("a custom-container function with webServerMode false takes no HTTP requests"));
            }
            crate::images::check_non_web_event(&req.event)?;
        }
        Ok(self.invoker.invoke(&prepared.spec, req).await?)
    }

    /// How many instances of a provisioned function version run now (GetProvisionConfig's `current`).
    pub async fn provisioned_now(&self, account: &str, service: &ServiceName, function: &FunctionName, q: &Qualifier) -> usize {
        match self.prepare_main(account, service, function, q).await {
            Ok(p) => self.invoker.alive(&p.spec.key),
            Err(_) => 0,
        }
    }

    /// Keeps provisioned instances warm: every few seconds, each provision config's target is reconciled,
    /// and the instances of configs that went away are released.
    pub async fn keep_provisioned(self: Arc<Self>) {
        let mut warmed: std::collections::HashMap<SpecKey, Arc<FunctionSpec>> = std::collections::HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            let mut targets = Vec::new();
            let accounts = match self.meta.list_accounts().await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "reading accounts failed");
                    continue;
                }
            };
            let mut complete = true;
            for a in accounts {
                match self.provision_targets(&a.id).await {
                    Ok(t) => targets.extend(t.into_iter().map(|t| (a.id.clone(), t))),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading provision configs failed");
                        complete = false;
                    }
                }
            }
            if !complete {
                // Releasing instances whose config could not be read would be wrong: try again next tick.
                continue;
            }
            let mut now = std::collections::HashMap::new();
            for (account, t) in targets {
                let Ok(p) = self.prepare_main(&account, &t.service, &t.function, &t.qualifier).await else { continue };
                // The target is cluster-wide: this node keeps its share.
                let salt = crate::cluster::salt(&[&account, t.service.as_str(), t.function.as_str(), &t.qualifier.to_string()]);
                let target = self.cluster.share(t.target as usize, salt);
                if let Err(e) = self.invoker.ensure_warm(&p.spec, target).await {
                    tracing::warn!(function = %t.function, error = %e, "could not start provisioned instances");
                }
                now.insert(p.spec.key.clone(), p.spec);
            }
            for (key, spec) in warmed.drain() {
                if !now.contains_key(&key) {
                    let _ = self.invoker.ensure_warm(&spec, 0).await;
                }
            }
            warmed = now;
        }
    }
}
