//! What the caller gets from one invocation: the runtime's answer, a timeout or a crash turned into a status,
//! headers, body, content type and FC's error type. Pure: the invoker does the killing and the logging.
//!
//! The runtime's answer follows FC's custom-runtime contract (fc-api.md §8.1; FC's "custom runtime event
//! functions" page): status 200 / `x-fc-status: 200` is success, 404 failure, and without `x-fc-status` the
//! status decides. A failed answer reaches the caller as the runtime wrote it — its own body and content type —
//! with `X-Fc-Error-Type`: every failure is an `UnhandledInvocationError` except what the runtime marks
//! `HandledInvocationError` (openfc's Node.js shim, for `callback(err)` as FC's Node.js runtime does).

use bytes::Bytes;
use openfc_core::invocation::FunctionError;

use crate::instance::RuntimeResponse;
use crate::reserved_header;

const X_FC_STATUS: http::HeaderName = http::HeaderName::from_static("x-fc-status");
const X_FC_ERROR_TYPE: http::HeaderName = http::HeaderName::from_static("x-fc-error-type");

/// What the caller gets (the fields of `InvokeOutcome` that depend on how the invocation ended).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub content_type: Option<String>,
    pub error: Option<FunctionError>,
}

/// openfc's body for a failure the runtime could not report itself (timeout, crash): FC's error shape.
pub(crate) fn error_body(error_type: &str, message: &str) -> Bytes {
    Bytes::from(serde_json::json!({"errorMessage": message, "errorType": error_type, "stackTrace": []}).to_string())
}

fn success_status(code: u16) -> bool {
    (200..300).contains(&code)
}

/// Whether the runtime reported a failure. `x-fc-status`, when present, decides; an event's non-2xx status
/// is a failure too, while an HTTP function's own 404 or 500 is a response unless the runtime marks it.
fn failed(r: &RuntimeResponse, is_http: bool) -> bool {
    match r.headers.get(&X_FC_STATUS) {
        // A value that is no status code cannot say success.
        Some(v) => !v.to_str().ok().and_then(|s| s.trim().parse().ok()).is_some_and(success_status),
        None if is_http => r.headers.contains_key(&X_FC_ERROR_TYPE),
        None => !success_status(r.status),
    }
}

/// FC's error type of a failed answer: only what the runtime marks handled is handled.
fn error_type(r: &RuntimeResponse) -> FunctionError {
    match r.headers.get(&X_FC_ERROR_TYPE).and_then(|v| v.to_str().ok()) {
        Some(t) if t.trim().eq_ignore_ascii_case(FunctionError::Handled.as_str()) => FunctionError::Handled,
        _ => FunctionError::Unhandled,
    }
}

/// The runtime answered. A failure keeps the runtime's body and content type (status 200: function errors
/// are not HTTP errors); an HTTP function's success keeps its status and the headers it may set.
pub(crate) fn answered(r: RuntimeResponse, is_http: bool) -> Answer {
    let content_type = r.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if failed(&r, is_http) {
        let error = error_type(&r);
        return Answer { status: 200, headers: http::HeaderMap::new(), body: r.body, content_type, error: Some(error) };
    }
    let mut headers = http::HeaderMap::new();
    if is_http {
        for (k, v) in r.headers.iter() {
            if !reserved_header(k.as_str()) {
                headers.append(k.clone(), v.clone());
            }
        }
    }
    Answer { status: r.status, headers, body: r.body, content_type, error: None }
}

/// A failure openfc reports for the runtime: FC's JSON error body, unhandled.
pub(crate) fn failure(kind: &str, message: &str) -> Answer {
    Answer {
        status: 200,
        headers: http::HeaderMap::new(),
        body: error_body(kind, message),
        content_type: Some("application/json".into()),
        error: Some(FunctionError::Unhandled),
    }
}

pub(crate) fn timeout_message(timeout_secs: u64, max_memory_mb: u64) -> String {
    format!("Function timed out after {timeout_secs} seconds (maxMemoryUsage: {max_memory_mb}MB)")
}

/// The runtime's process ended (or its connection broke) before it answered: the error kind and message.
pub(crate) fn crash(oom: bool, memory_mb: u64, exit_code: Option<i32>, why: &str, last_output: &[String]) -> (&'static str, String) {
    if oom {
        let msg = format!("Function ran out of memory: the instance exceeded its memory size of {memory_mb} MB and was stopped");
        return ("FunctionOOMError", msg);
    }
    let code = exit_code.map_or("unknown".into(), |c| c.to_string());
    let msg = format!("Process exited unexpectedly before completing request (exit code {code}; {why}). Last output:\n{}", last_output.join("\n"));
    ("FunctionExitedError", msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, headers: &[(&'static str, &'static str)], body: &'static str) -> RuntimeResponse {
        let mut h = http::HeaderMap::new();
        for (k, v) in headers {
            h.append(*k, http::HeaderValue::from_static(v));
        }
        RuntimeResponse { status, headers: h, body: Bytes::from_static(body.as_bytes()) }
    }

    #[test]
    fn event_success_keeps_body_and_content_type() {
        let a = answered(resp(200, &[("content-type", "text/plain"), ("x-custom", "1")], "ok"), false);
        assert_eq!((a.status, a.body.as_ref(), a.content_type.as_deref(), a.error), (200, &b"ok"[..], Some("text/plain"), None));
        assert!(a.headers.is_empty(), "an event's answer carries no function headers");
        // Any 2xx is success (FC: 200 success, 404 failure).
        assert_eq!(answered(resp(204, &[], ""), false).error, None);
    }

    #[test]
    fn x_fc_status_failure_passes_the_runtimes_own_body_through() {
        let a = answered(resp(200, &[("content-type", "text/html"), ("x-fc-status", "404")], "<b>no</b>"), false);
        assert_eq!((a.status, a.body.as_ref(), a.content_type.as_deref()), (200, &b"<b>no</b>"[..], Some("text/html")));
        assert_eq!(a.error, Some(FunctionError::Unhandled));
    }

    #[test]
    fn non_2xx_without_x_fc_status_is_unhandled_with_the_plain_body() {
        let a = answered(resp(500, &[("content-type", "text/plain")], "plain failure"), false);
        assert_eq!((a.status, a.body.as_ref(), a.content_type.as_deref()), (200, &b"plain failure"[..], Some("text/plain")));
        assert_eq!(a.error, Some(FunctionError::Unhandled));
        // A JSON body is not "handled" by being JSON.
        let a = answered(resp(500, &[("content-type", "application/json")], r#"{"errorMessage":"x"}"#), false);
        assert_eq!((a.body.as_ref(), a.error), (&br#"{"errorMessage":"x"}"#[..], Some(FunctionError::Unhandled)));
    }

    #[test]
    fn x_fc_status_decides_over_the_status() {
        assert_eq!(answered(resp(500, &[("x-fc-status", "200")], "fine"), false).error, None);
        assert_eq!(answered(resp(200, &[("x-fc-status", "500")], ""), false).error, Some(FunctionError::Unhandled));
        assert_eq!(answered(resp(200, &[("x-fc-status", "bogus")], ""), false).error, Some(FunctionError::Unhandled));
    }

    #[test]
    fn only_a_runtime_marked_handled_error_is_handled() {
        let marked = |t: &'static str| answered(resp(404, &[("x-fc-status", "404"), ("x-fc-error-type", t)], "{}"), false).error;
        assert_eq!(marked("HandledInvocationError"), Some(FunctionError::Handled));
        assert_eq!(marked("UnhandledInvocationError"), Some(FunctionError::Unhandled));
        assert_eq!(marked("SomethingElse"), Some(FunctionError::Unhandled));
    }

    #[test]
    fn http_functions_own_statuses_are_responses() {
        let a = answered(resp(404, &[("content-type", "text/plain"), ("x-fc-secret", "s"), ("x-app", "1")], "nope"), true);
        assert_eq!((a.status, a.error, a.body.as_ref()), (404, None, &b"nope"[..]));
        assert_eq!(a.headers.get("x-app").map(|v| v.as_bytes()), Some(&b"1"[..]));
        assert!(a.headers.get("x-fc-secret").is_none(), "x-fc-* headers are FC's own");
        // Marked by the runtime: a failure, with no function headers.
        let a = answered(resp(404, &[("x-fc-status", "404"), ("x-app", "1")], "{}"), true);
        assert_eq!((a.status, a.error, a.headers.len()), (200, Some(FunctionError::Unhandled), 0));
        let a = answered(resp(404, &[("x-fc-error-type", "UnhandledInvocationError")], "{}"), true);
        assert_eq!(a.error, Some(FunctionError::Unhandled));
    }

    #[test]
    fn no_failure_message_names_a_status() {
        for a in [answered(resp(200, &[("x-fc-status", "404")], ""), false), answered(resp(500, &[], "x"), false)] {
            assert!(!String::from_utf8_lossy(&a.body).contains("status"), "{a:?}");
        }
    }

    #[test]
    fn openfc_reported_failures_have_fcs_shape() {
        let a = failure("FunctionTimeoutError", &timeout_message(3, 12));
        let body: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(body["errorMessage"], "Function timed out after 3 seconds (maxMemoryUsage: 12MB)");
        assert_eq!(body["errorType"], "FunctionTimeoutError");
        assert_eq!((a.content_type.as_deref(), a.error), (Some("application/json"), Some(FunctionError::Unhandled)));
    }

    #[test]
    fn crash_kinds() {
        let (kind, msg) = crash(true, 128, Some(137), "eof", &[]);
        assert_eq!(kind, "FunctionOOMError");
        assert!(msg.contains("memory size of 128 MB"), "{msg}");
        let (kind, msg) = crash(false, 128, Some(3), "eof", &["last words".into()]);
        assert_eq!(kind, "FunctionExitedError");
        assert!(msg.starts_with("Process exited unexpectedly before completing request (exit code 3; eof)"), "{msg}");
        assert!(msg.ends_with("Last output:\nlast words"), "{msg}");
        assert!(crash(false, 128, None, "eof", &[]).1.contains("exit code unknown"));
    }
}
