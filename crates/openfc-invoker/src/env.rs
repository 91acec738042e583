//! The environment a runtime starts with: the function's variables, FC's platform variables (spec §8.4) and the
//! runtime's own; for custom-container images, the image's environment under the function's.

use openfc_core::images::ContainerPlan;

use crate::FunctionSpec;
use crate::runtime::{Launch, Protocol, RUNTIME_API_ADDR};

pub(crate) fn env_vec(spec: &FunctionSpec, launch: &Launch, instance_id: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = spec.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    env.extend(fc_vars(spec, launch, instance_id).into_iter().map(|(k, v)| (k.to_owned(), v)));
    // The runtime's own platform variables replace any the function set (FC_SERVER_PATH must hold: code
    // detects FC by it); its defaults apply only where the function set nothing.
    for (k, v) in launch.runtime.env {
        env.retain(|(key, _)| key != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    for (k, v) in launch.runtime.env_defaults {
        if !env.iter().any(|(key, _)| key == k) {
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
    }
    for (k, v) in CODE_RUNTIME_DEFAULTS {
        if !env.iter().any(|(key, _)| key == k) {
            env.push((k.to_owned(), v.to_owned()));
        }
    }
    env
}

/// The environment a pre-started runtime starts with, before its function's (`env_vec`) arrives: the defaults
/// every code runtime gets, and the flag that makes the shims wait for their function.
pub(crate) fn generic_env() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = CODE_RUNTIME_DEFAULTS.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    env.push(("OPENFC_PRESTARTED".into(), "1".into()));
    env
}

/// Defaults of every code runtime's environment (the function's own variables win).
const CODE_RUNTIME_DEFAULTS: [(&str, &str); 6] = [
    ("PATH", "/usr/local/bin:/usr/bin:/bin:/code:/code/bin:/opt/bin"),
    ("HOME", "/tmp"),
    ("LANG", "C.UTF-8"),
    ("PYTHONDONTWRITEBYTECODE", "1"),
    ("PYTHONPATH", "/code:/opt/python"),
    ("NODE_PATH", "/code/node_modules:/opt/nodejs/node_modules"),
];

/// FC's own variables of every instance (fc-api.md §8.4).
fn fc_vars(spec: &FunctionSpec, launch: &Launch, instance_id: &str) -> [(&'static str, String); 18] {
    let runtime_api = match launch.runtime.protocol {
        // go1's SDK and the PHP shim read it; it replaces caPort for them (runtimes.md §2.4).
        Protocol::RuntimeApi => RUNTIME_API_ADDR.to_string(),
        Protocol::Http => format!("127.0.0.1:{}", spec.ca_port),
    };
    [
        ("FC_FUNC_CODE_PATH", "/code".to_owned()),
        ("FC_CUSTOM_LISTEN_PORT", spec.ca_port.to_string()),
        ("FC_FUNCTION_HANDLER", spec.handler.clone()),
        ("FC_FUNCTION_INITIALIZER", spec.initializer.clone()),
        ("FC_FUNCTION_NAME", spec.function.clone()),
        ("FC_SERVICE_NAME", spec.service.clone()),
        ("FC_FUNCTION_MEMORY_SIZE", spec.memory_mb.to_string()),
        ("FC_FUNCTION_TIMEOUT", spec.timeout_secs.to_string()),
        ("FC_INITIALIZATION_TIMEOUT", spec.initialization_timeout_secs.to_string()),
        ("FC_REGION", spec.region.clone()),
        ("FC_ACCOUNT_ID", spec.account_id.clone()),
        ("FC_QUALIFIER", spec.qualifier.clone()),
        ("FC_VERSION_ID", spec.version_id.clone()),
        ("FC_FUNCTION_VERSION", spec.version_id.clone()),
        ("FC_SERVICE_LOG_PROJECT", spec.log_project.clone()),
        ("FC_SERVICE_LOG_STORE", spec.log_store.clone()),
        ("FC_INSTANCE_ID", instance_id.to_owned()),
        ("FC_RUNTIME_API", runtime_api),
    ]
}


/// The environment of a container instance (containers.md §4.3), later wins: the image's `Env`, the function's
/// variables, FC's. No code-runtime defaults; Docker's PATH and the user's home when the image sets none.
pub(crate) fn container_env(spec: &FunctionSpec, plan: &ContainerPlan, launch: &Launch, instance_id: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| {
        env.retain(|(key, _)| key != k);
        env.push((k.to_owned(), v));
    };
    for (k, v) in &plan.env {
        set(k, v.clone());
    }
    for (k, v) in &spec.env {
        set(k, v.clone());
    }
    for (k, v) in fc_vars(spec, launch, instance_id) {
        set(k, v);
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()));
    }
    if !env.iter().any(|(k, _)| k == "HOME") {
        env.push(("HOME".into(), plan.image.user.home.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| "/".into())));
    }
    env
}

/// An image id inside the instance's user namespace, which maps 0–65535 (larger ids become nobody, as the
/// unpacker wrote their files).
pub(crate) fn inside_id(id: u32) -> u32 {
    if id >= 65_536 { 65_534 } else { id }
}
