//! The invoker as core's `Invoker` port, and the `x-fc-*` headers every control request of a function version
//! carries.

use super::*;

/// The headers of every control request (`instance::Control`) that depend only on the function version (a pool serves one version
/// under any of its qualifiers, so the qualifier is not among them).
pub(crate) fn fixed_headers(spec: &FunctionSpec) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    // The runtime contract carries the function's credentials in every control request; openfc has none to
    // give yet (no roles), so the three headers are sent empty, as FC does for a service without a role.
    let fields: [(&'static str, String); 18] = [
        ("host", format!("127.0.0.1:{}", spec.ca_port)),
        ("content-type", "application/octet-stream".into()),
        ("x-fc-function-handler", spec.handler.clone()),
        ("x-fc-function-memory", spec.memory_mb.to_string()),
        ("x-fc-function-timeout", spec.timeout_secs.to_string()),
        ("x-fc-function-initializer", spec.initializer.clone()),
        ("x-fc-initialization-timeout", spec.initialization_timeout_secs.to_string()),
        ("x-fc-instance-lifecycle-pre-stop-handler", spec.pre_stop_handler.clone()),
        ("x-fc-access-key-id", String::new()),
        ("x-fc-access-key-secret", String::new()),
        ("x-fc-security-token", String::new()),
        ("x-fc-region", spec.region.clone()),
        ("x-fc-account-id", spec.account_id.clone()),
        ("x-fc-version-id", spec.version_id.clone()),
        ("x-fc-function-name", spec.function.clone()),
        ("x-fc-service-name", spec.service.clone()),
        ("x-fc-service-logproject", spec.log_project.clone()),
        ("x-fc-service-logstore", spec.log_store.clone()),
    ];
    for (name, value) in fields {
        // Stored names and settings are validated printable text; anything else is left out, not sent broken.
        if let Ok(v) = http::HeaderValue::try_from(value) {
            h.insert(http::HeaderName::from_static(name), v);
        }
    }
    // A traced service's collector: the runtime's `context.tracing.jaegerEndpoint`; its presence also makes
    // each invocation carry a span context (`instance::span_context`).
    if let Some(v) = spec.tracing_endpoint.as_deref().and_then(|e| http::HeaderValue::try_from(e).ok()) {
        h.insert(instance::X_FC_TRACING_ENDPOINT, v);
    }
    h
}

/// openfc's sandboxes behind core's invocation port.
#[async_trait::async_trait]
impl openfc_core::invocation::Invoker for Invoker {
    fn check_runtime(&self, runtime: &str) -> Result<(), InvokeError> {
        runtime::check(runtime, &self.shared.config.interpreters).map(|_| ())
    }

    async fn invoke(&self, spec: &FunctionSpec, req: InvokeRequest) -> Result<InvokeOutcome, InvokeError> {
        Invoker::invoke(self, spec, req).await
    }

    async fn ensure_warm(&self, spec: &FunctionSpec, target: usize) -> Result<usize, InvokeError> {
        Invoker::ensure_warm(self, spec, target).await
    }

    fn alive(&self, key: &SpecKey) -> usize {
        Invoker::alive(self, key)
    }

    fn instances(&self) -> Vec<openfc_core::cluster::InstanceInfo> {
        let pools = self.pools.lock().expect("pools");
        let mut out = Vec::new();
        for p in pools.values() {
            for i in p.instances.lock().expect("instances").iter().filter(|i| !i.exited()) {
                out.push(openfc_core::cluster::InstanceInfo {
                    id: i.id.clone(),
                    account_id: p.account.clone(),
                    service: p.service.clone(),
                    function: p.function.clone(),
                    version: p.version.clone(),
                });
            }
        }
        out
    }
}
