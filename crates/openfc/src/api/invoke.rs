//! InvokeFunction (spec §5.6): header validation, payload limits and the FC response headers; what runs
//! and the running are core's invocation use case. Function failures are 200 responses with
//! `X-Fc-Error-Type`, never HTTP errors.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
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

// The response headers of every invocation, named once (a name given as a string is parsed at each insert).
const X_FC_CODE_CHECKSUM: HeaderName = HeaderName::from_static("x-fc-code-checksum");
const X_FC_INVOCATION_DURATION: HeaderName = HeaderName::from_static("x-fc-invocation-duration");
const X_FC_MAX_MEMORY_USAGE: HeaderName = HeaderName::from_static("x-fc-max-memory-usage");
const X_FC_INVOCATION_SERVICE_VERSION: HeaderName = HeaderName::from_static("x-fc-invocation-service-version");
const X_FC_INSTANCE_ID: HeaderName = HeaderName::from_static("x-fc-instance-id");
const X_FC_ERROR_TYPE: HeaderName = HeaderName::from_static("x-fc-error-type");
const X_FC_LOG_RESULT: HeaderName = HeaderName::from_static("x-fc-log-result");

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
    // A function's content type that is no header value leaves the body's default (octet-stream).
    match outcome.content_type.as_deref().map(HeaderValue::from_str) {
        Some(Ok(v)) => {
            h.insert(header::CONTENT_TYPE, v);
        }
        Some(Err(_)) => {}
        None => {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        }
    }
    // A container image has no code package, so no checksum (containers.md §1.2).
    if prepared.spec.container.is_none() {
        h.insert(X_FC_CODE_CHECKSUM, HeaderValue::from(prepared.spec.code.checksum));
    }
    h.insert(X_FC_INVOCATION_DURATION, HeaderValue::from(outcome.duration.as_millis() as u64));
    h.insert(X_FC_MAX_MEMORY_USAGE, HeaderValue::from(outcome.max_memory_mb));
    h.insert(
        X_FC_INVOCATION_SERVICE_VERSION,
        prepared.version.map_or(HeaderValue::from_static("LATEST"), HeaderValue::from),
    );
    if let Ok(v) = HeaderValue::from_str(&outcome.instance_id) {
        h.insert(X_FC_INSTANCE_ID, v);
    }
    if let Some(e) = outcome.error {
        h.insert(X_FC_ERROR_TYPE, HeaderValue::from_static(e.as_str()));
    }
    if tail {
        let log = outcome.log.as_bytes();
        let cut = log.len().saturating_sub(LOG_RESULT_MAX);
        if let Ok(v) = HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(&log[cut..])) {
            h.insert(X_FC_LOG_RESULT, v);
        }
    }
    Ok(resp)
}
