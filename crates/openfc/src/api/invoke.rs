//! InvokeFunction (spec §5.6): header validation, payload limits and the FC response headers; what runs
//! and the running are core's invocation use case. Function failures are 200 responses with
//! `X-Fc-Error-Type`, never HTTP errors.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use openfc_core::invocation::InvokeRequest;
use openfc_core::names::{FunctionName, Qualifier, ServiceName};
use openfc_core::wire::ErrorCode;

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
    if is_async {
        // The caller may name the invocation (stateful async invocations); else it is the request id.
        let id = match header(headers, "x-fc-stateful-async-invocation-id").filter(|v| !v.is_empty()) {
            Some(id) => {
                openfc_core::stateful::check_invocation_id(id)?;
                id
            }
            None => request_id,
        };
        // Durable: the 202 is sent only once the event is committed.
        app.fc.enqueue_async(account, service, function, qualifier, id, body, "invoke").await?;
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    let prepared = app.fc.prepare(account, service, function, qualifier).await?;
    let req = InvokeRequest { request_id: request_id.to_owned(), http: None, want_log: tail, event: body };
    let outcome = app.fc.invoke(&prepared, req).await?;
    let mut resp = (StatusCode::OK, outcome.body).into_response();
    let h = resp.headers_mut();
    let content_type = outcome.content_type.unwrap_or_else(|| "application/octet-stream".into());
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    put(header::CONTENT_TYPE.as_str(), content_type);
    // A container image has no code package, so no checksum (containers.md §1.2).
    if prepared.spec.container.is_none() {
        put("x-fc-code-checksum", prepared.spec.code.checksum.to_string());
    }
    put("x-fc-invocation-duration", outcome.duration.as_millis().to_string());
    put("x-fc-max-memory-usage", outcome.max_memory_mb.to_string());
    put("x-fc-invocation-service-version", prepared.version_label());
    put("x-fc-instance-id", outcome.instance_id.clone());
    if let Some(e) = outcome.error {
        put("x-fc-error-type", e.as_str().to_owned());
    }
    if tail {
        let log = outcome.log.as_bytes();
        let cut = log.len().saturating_sub(LOG_RESULT_MAX);
        put("x-fc-log-result", base64::engine::general_purpose::STANDARD.encode(&log[cut..]));
    }
    Ok(resp)
}
