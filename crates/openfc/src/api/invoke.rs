//! InvokeFunction (spec §5.6): header validation, payload limits, resolving what runs, and the FC response
//! headers. Function failures are 200 responses with `X-Fc-Error-Type`, never HTTP errors.


use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use openfc_core::function::FunctionFields;
use openfc_core::invoke::InvokeTarget;
use openfc_core::names::{FunctionName, Qualifier, ServiceName};
use openfc_core::wire::ErrorCode;
use openfc_invoker::{FunctionSpec, InvokeRequest};

use super::App;
use super::error::ApiError;

const SYNC_MAX: usize = 32 * 1024 * 1024;
const ASYNC_MAX: usize = 128 * 1024;
const LOG_RESULT_MAX: usize = 4096;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn invalid(msg: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, msg)
}

/// The runtime-facing description of what runs, from the stored function and service.
fn function_spec(app: &App, account: &str, target: &InvokeTarget) -> Result<FunctionSpec, ApiError> {
    let f = &target.function;
    let fields: FunctionFields = serde_json::from_value(f.config.clone())
        .map_err(|e| ApiError::internal(format!("stored function config unreadable: {e}")))?;
    // Before anything else: an async request for a runtime openfc cannot run must not be accepted.
    openfc_invoker::runtime::check_supported(fields.runtime.as_deref().unwrap_or(""))?;
    let code = f.code.clone().ok_or_else(|| invalid(format!("function '{}' has no code package to run", f.name)))?;
    let log = target.service.config.get("logConfig");
    let log_field = |k: &str| log.and_then(|l| l.get(k)).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    let version = target.version.map_or("LATEST".to_owned(), |v| v.to_string());
    let lifecycle = fields.instance_lifecycle_config.clone().unwrap_or_default();
    Ok(FunctionSpec {
        // The service's etag too: its internetAccess and logConfig shape the instance.
        key: format!("{account}/{}/{}@{version}#{}#{}", f.service_name, f.name, f.etag, target.service.etag),
        account_id: account.to_owned(),
        region: app.region.clone(),
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
    })
}

/// `function_spec`, built once per function state rather than per request (it parses the stored config).
pub(crate) fn cached_spec(app: &App, account: &str, target: &InvokeTarget) -> Result<std::sync::Arc<FunctionSpec>, ApiError> {
    let f = &target.function;
    let key = format!(
        "{account}/{}/{}@{:?}#{}#{}#{}#{:?}",
        f.service_name, f.name, target.version, f.etag, target.service.etag, target.qualifier, target.max_instances
    );
    if let Some(spec) = app.specs.get(&key) {
        return Ok(spec);
    }
    let spec = std::sync::Arc::new(function_spec(app, account, target)?);
    app.specs.put(key, spec.clone());
    Ok(spec)
}

#[allow(clippy::too_many_arguments)]
pub async fn invoke(
    app: &App,
    account: &str,
    request_id: &str,
    service: &ServiceName,
    function: &FunctionName,
    qualifier: &Qualifier,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let invocation_type = header(headers, "x-fc-invocation-type").unwrap_or("Sync");
    let is_async = match invocation_type {
        "Sync" | "" => false,
        "Async" => true,
        other => {
            return Err(invalid(format!(
                "InvocationType is set to an invalid value (allowed: Async | Sync, actual: '{other}')"
            )));
        }
    };
    let log_type = header(headers, "x-fc-log-type").unwrap_or("None");
    let tail = match (log_type, is_async) {
        ("None" | "", _) => false,
        ("Tail", false) => true,
        (other, true) => {
            return Err(invalid(format!("LogType is set to an invalid value (allowed: None, actual: '{other}')")));
        }
        (other, false) => {
            return Err(invalid(format!("LogType is set to an invalid value (allowed: Tail | None, actual: '{other}')")));
        }
    };
    let max = if is_async { ASYNC_MAX } else { SYNC_MAX };
    if body.len() > max {
        return Err(ApiError::new(ErrorCode::EntityTooLarge, format!("payload size exceeds maximum allowed size ({max} bytes)")));
    }
    let target = app.fc.invoke_target(account, service, function, qualifier).await?;
    let spec = cached_spec(app, account, &target)?;
    let req = InvokeRequest {
        request_id: request_id.to_owned(),
        http: None,
        want_log: tail,
        event: body,
        access_key_id: String::new(),
        access_key_secret: String::new(),
    };
    if is_async {
        let invoker = app.invoker.clone();
        let rid = request_id.to_owned();
        tokio::spawn(async move {
            match invoker.invoke(&spec, req).await {
                Ok(o) if o.error_type.is_some() => tracing::warn!(request_id = %rid, "async invocation failed in the function"),
                Ok(_) => {}
                Err(e) => tracing::warn!(request_id = %rid, error = %e, "async invocation failed"),
            }
        });
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    let outcome = app.invoker.invoke(&spec, req).await?;
    let mut resp = (StatusCode::OK, outcome.body).into_response();
    let h = resp.headers_mut();
    let content_type = outcome.content_type.unwrap_or_else(|| "application/octet-stream".into());
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    put(header::CONTENT_TYPE.as_str(), content_type);
    put("x-fc-code-checksum", spec.code.checksum.to_string());
    put("x-fc-invocation-duration", outcome.duration.as_millis().to_string());
    put("x-fc-max-memory-usage", outcome.max_memory_mb.to_string());
    put("x-fc-invocation-service-version", target.version.map_or("LATEST".into(), |v| v.to_string()));
    put("x-fc-instance-id", outcome.instance_id.clone());
    if let Some(t) = outcome.error_type {
        put("x-fc-error-type", t.to_owned());
    }
    if tail {
        let log = outcome.log.as_bytes();
        let cut = log.len().saturating_sub(LOG_RESULT_MAX);
        put("x-fc-log-result", base64::engine::general_purpose::STANDARD.encode(&log[cut..]));
    }
    Ok(resp)
}

/// How many instances of a provisioned function version run now (GetProvisionConfig's `current`).
pub(crate) async fn provisioned_now(
    app: &App,
    account: &str,
    service: &ServiceName,
    function: &FunctionName,
    qualifier: &Qualifier,
) -> usize {
    match app.fc.invoke_target_routed(account, service, function, qualifier, 1.0).await {
        Ok(target) => cached_spec(app, account, &target).map_or(0, |spec| app.invoker.alive(&spec.key)),
        Err(_) => 0,
    }
}

/// Keeps provisioned instances warm: every few seconds, each provision config's target is reconciled.
pub async fn keep_provisioned(app: std::sync::Arc<App>, account: String) {
    let mut warmed: std::collections::HashMap<String, FunctionSpec> = std::collections::HashMap::new();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    loop {
        tick.tick().await;
        let targets = match app.fc.provision_targets(&account).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "reading provision configs failed");
                continue;
            }
        };
        let mut now = std::collections::HashMap::new();
        for t in targets {
            let spec = match app.fc.invoke_target_routed(&account, &t.service, &t.function, &t.qualifier, 1.0).await {
                Ok(target) => match cached_spec(&app, &account, &target) {
                    Ok(spec) => spec.as_ref().clone(),
                    Err(_) => continue,
                },
                Err(_) => continue,
            };
            if let Err(e) = app.invoker.ensure_warm(&spec, t.target as usize).await {
                tracing::warn!(function = %t.function, error = %e, "could not start provisioned instances");
            }
            now.insert(spec.key.clone(), spec);
        }
        for (key, spec) in warmed.drain() {
            if !now.contains_key(&key) {
                let _ = app.invoker.ensure_warm(&spec, 0).await;
            }
        }
        warmed = now;
    }
}
