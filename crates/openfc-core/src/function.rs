//! Functions (spec §5.3): the request shape, validation, FC's defaults and the response.
//! The request body is split first (`parse_function_request`): the possibly huge `code.zipFile` stays a
//! borrowed slice of the body, so a 100 MB package is never copied into a JSON tree.

mod config;
mod request;
mod validate;

use serde_json::{Map, Value};

use crate::ports::FunctionRecord;

pub use config::{
    CustomContainerConfig, CustomDns, CustomRuntimeConfig, DnsOption, FunctionFields, HealthCheckConfig,
    InstanceLifecycleConfig, LifecycleHook,
};
pub use request::{CodeSource, FUNCTION_SHAPE, FunctionRequest, parse_function_request, split_code};
pub use validate::RUNTIMES;

/// The JSON of a function as Create/Get/Update/List answer it.
pub fn function_json(rec: &FunctionRecord) -> Value {
    let mut out = match &rec.config {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    // openfc's own bookkeeping inside the stored configuration (`_image`: the function's image pull) is not FC's.
    out.retain(|k, _| !k.starts_with('_'));
    out.insert("functionName".into(), rec.name.clone().into());
    out.insert("functionId".into(), rec.id.clone().into());
    if let Some(code) = &rec.code {
        out.insert("codeChecksum".into(), code.checksum.to_string().into());
        out.insert("codeSize".into(), code.size.into());
    }
    out.insert("createdTime".into(), rec.created_time.clone().into());
    out.insert("lastModifiedTime".into(), rec.modified_time.clone().into());
    let arns = out.get("layers").cloned().unwrap_or(Value::Array(vec![]));
    out.insert("layersArnV2".into(), arns);
    Value::Object(out)
}

#[cfg(test)]
#[path = "function_tests.rs"]
mod tests;
