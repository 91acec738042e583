//! HTTP triggers (spec §5.7): `{ANY} /{v}/proxy/{svc}[.{qualifier}]/{fn}[/{path}]`, and the forwarding that
//! custom domains (`domains`) share with them. The function's HTTP trigger decides whether a signature is
//! needed (`authType`) and which methods pass; the request reaches the function as itself (method, path,
//! query, headers, body) and its response comes back as it gave it, except for the caller's credentials
//! (`Authorization` and the STS tokens), which never reach the function. The body is read only once the
//! request is known to be allowed (signature checked, trigger found, method allowed).

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use openfc_core::names::{FunctionName, Qualifier, ServiceName};
use openfc_core::wire::ErrorCode;
use openfc_core::invocation::{HttpCall, InvokeRequest};
use openfc_core::trigger_config::{HttpAuth, TriggerConfig};

use super::App;
use super::error::ApiError;

const MAX_HEADER_BYTES: usize = 8 * 1024;
const MAX_URI_BYTES: usize = 4 * 1024;
/// Synchronous HTTP-trigger request bodies (spec §5.7).
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Headers that carry the caller's credentials: the function must not be able to reuse them.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "x-fc-security-token", "x-acs-security-token"];

/// (service segment, function, the path after the function) of a proxy path, or `None` if it is not one.
pub fn split(path: &str) -> Option<(&str, &str, &str)> {
    let rest = path.strip_prefix("/2016-08-15/proxy/").or_else(|| path.strip_prefix("/2021-04-06/proxy/"))?;
    let (svc, rest) = rest.split_once('/')?;
    let (function, sub) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Some((svc, function, sub))
}

pub async fn handle(app: &App, request_id: &str, parts: Parts, body: Body) -> Result<Response, ApiError> {
    let path = parts.uri.path().to_owned();
    let (svc_seg, fn_seg, sub) = split(&path).ok_or_else(|| ApiError::path_not_supported(parts.method.as_str(), &path))?;
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let (svc, qualifier) = match decode(svc_seg).split_once('.') {
        Some((s, q)) => (s.to_owned(), q.to_owned()),
        None => (decode(svc_seg), String::new()),
    };
    let service = ServiceName::parse(&svc)?;
    let function = FunctionName::parse(&decode(fn_seg))?;
    let qualifier = Qualifier::parse(&qualifier)?;
    check_limits(&parts)?;
    // Signed requests name their account; anonymous ones the account in the host name, as FC's endpoints
    // do (`{accountId}.{region}.fc...`), else the first account.
    let mut caller = authenticate_if_signed(app, &parts).await?;
    let account = match &caller {
        Some(c) => c.account.clone(),
        None => host_account(&parts.headers).unwrap_or_else(|| app.default_account.clone()),
    };
    // Custom runtimes see the full original URI (as on FC's account endpoint); built-in runtimes the path
    // after the function.
    let query = parts.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let target = Target { account, service, function, qualifier, uri: format!("{sub}{query}"), custom_uri: format!("{path}{query}") };
    let outcome = forward(app, request_id, &parts, body, caller.as_mut(), target).await;
    if let Some(caller) = &mut caller {
        caller.settle(&outcome);
    }
    outcome
}

/// FC's bounds on what an HTTP-trigger request may carry (spec §5.7).
pub(super) fn check_limits(parts: &Parts) -> Result<(), ApiError> {
    let uri_len = parts.uri.path_and_query().map_or(0, |p| p.as_str().len());
    let header_len: usize = parts.headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if uri_len > MAX_URI_BYTES || header_len > MAX_HEADER_BYTES {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            format!("HTTP trigger requests allow {MAX_URI_BYTES} bytes of path and query and {MAX_HEADER_BYTES} bytes of headers"),
        ));
    }
    Ok(())
}

/// A request with an `Authorization` header is signed and must check out; one without is anonymous.
pub(super) async fn authenticate_if_signed(app: &App, parts: &Parts) -> Result<Option<super::auth::Caller>, ApiError> {
    if is_fc_signature(parts) {
        Ok(Some(super::auth::authenticate(&app.keyring, parts).await?))
    } else {
        Ok(None)
    }
}

/// Whether the request carries one of the three FC signature schemes. Any other `Authorization` (an app's
/// own `Bearer` or `Basic`) belongs to the function: the request is anonymous and the header reaches it.
fn is_fc_signature(parts: &Parts) -> bool {
    let Some(value) = parts.headers.get("authorization").and_then(|v| v.to_str().ok()) else { return false };
    let scheme = value.split_whitespace().next().unwrap_or("");
    // Schemes match in any case, as openfc_auth::parse_authorization reads them.
    ["FC", "ACS3-HMAC-SHA256", "acs"].iter().any(|s| s.eq_ignore_ascii_case(scheme))
}

/// The function a request reaches, and the URI it sees there.
pub(super) struct Target {
    /// Whose function it is.
    pub account: String,
    pub service: ServiceName,
    pub function: FunctionName,
    pub qualifier: Qualifier,
    /// The path and query a built-in runtime sees.
    pub uri: String,
    /// The path and query a custom runtime sees.
    pub custom_uri: String,
}

/// Runs a request on the function's HTTP trigger, as HTTP triggers and custom domains both do: the trigger's
/// `authType` and `methods` apply, the body is read only then, the caller's credentials are dropped, and the
/// function's response comes back as it gave it. `caller` is the request's signer, if it was signed.
pub(super) async fn forward(
    app: &App,
    request_id: &str,
    parts: &Parts,
    body: Body,
    caller: Option<&mut super::auth::Caller>,
    target: Target,
) -> Result<Response, ApiError> {
    let Target { account, service, function, qualifier, uri, custom_uri } = target;
    let signed = caller.is_some();
    if let Some(c) = caller.as_deref() {
        // A signed call is InvokeFunction by its key, under the key's policy.
        let endpoint = super::endpoint::Endpoint::InvokeFunction {
            service: service.clone(),
            function: function.clone(),
            qualifier: qualifier.clone(),
        };
        super::auth::authorize(c, endpoint.action(), &endpoint.resource(&app.region, &account))?;
    }
    let prepared = app.fc.prepare(&account, &service, &function, &qualifier).await?;
    let trigger = app.fc.http_trigger_typed(&account, &service, &function, &qualifier).await?;
    if matches!(trigger.config, TriggerConfig::Http { auth: HttpAuth::Function, .. }) && !signed {
        return Err(ApiError::new(
            ErrorCode::MissingRequiredHeader,
            "required HTTP header Authorization was not specified (the HTTP trigger's authType is function)",
        ));
    }
    if !trigger.allows_method(parts.method.as_str()) {
        return Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("method {} is not allowed by the HTTP trigger of function '{function}'", parts.method),
        ));
    }
    let body = match caller {
        Some(caller) => caller.read_body(body, &parts.headers, MAX_BODY_BYTES).await?,
        None => super::read_body(body, &parts.headers, MAX_BODY_BYTES, |_| ()).await?,
    };

    let uri = if prepared.spec.runtime.starts_with("custom") { custom_uri } else { uri };
    let mut headers = parts.headers.clone();
    for name in CREDENTIAL_HEADERS {
        // An anonymous request's Authorization is the app's own (Bearer, Basic): it stays.
        if signed || name != "authorization" {
            headers.remove(name);
        }
    }
    // The instance's own Host is its loopback; the one the client used (a custom domain, openfc's host)
    // goes along as X-Forwarded-Host, for apps that build links and redirects from it.
    if let Some(host) = parts.headers.get("host").cloned()
        && !headers.contains_key("x-forwarded-host")
    {
        headers.insert("x-forwarded-host", host);
    }
    if let Some(original) = parts.uri.path_and_query()
        && let Ok(v) = HeaderValue::from_str(original.as_str())
    {
        headers.insert("x-fc-request-uri", v);
    }
    let req = InvokeRequest {
        request_id: request_id.to_owned(),
        http: Some(HttpCall { method: parts.method.clone(), uri, headers }),
        want_log: false,
        event: body,
    };
    let outcome = app.fc.invoke(&prepared, req).await?;
    let mut resp = (StatusCode::from_u16(outcome.status).unwrap_or(StatusCode::OK), outcome.body).into_response();
    *resp.headers_mut() = outcome.headers;
    if let Some(e) = outcome.error {
        resp.headers_mut().insert("x-fc-error-type", HeaderValue::from_static(e.as_str()));
        // The runtime's own content type when it answered the failure itself (a custom runtime's
        // x-fc-status), else openfc's JSON error body's.
        let content_type = outcome.content_type.as_deref().and_then(|c| HeaderValue::from_str(c).ok());
        resp.headers_mut().insert("content-type", content_type.unwrap_or(HeaderValue::from_static("application/json")));
    }
    Ok(resp)
}

/// An account id (16 digits) as the first label of the `Host`.
fn host_account(headers: &axum::http::HeaderMap) -> Option<String> {
    let host = headers.get("host")?.to_str().ok()?;
    let label = host.split(['.', ':']).next()?;
    (label.len() == 16 && label.bytes().all(|b| b.is_ascii_digit())).then(|| label.to_owned())
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn the_account_of_an_anonymous_request_is_the_hosts_first_label() {
        let with = |h: &str| {
            let mut m = axum::http::HeaderMap::new();
            m.insert("host", h.parse().unwrap());
            super::host_account(&m)
        };
        assert_eq!(with("1234567890123456.cn-hangzhou.fc.example.com").as_deref(), Some("1234567890123456"));
        assert_eq!(with("1234567890123456:9900").as_deref(), Some("1234567890123456"));
        assert_eq!(with("127.0.0.1:9900"), None);
        assert_eq!(with("localhost"), None);
    }

    #[test]
    fn proxy_paths() {
        assert_eq!(split("/2016-08-15/proxy/s.LATEST/f/a/b"), Some(("s.LATEST", "f", "/a/b")));
        assert_eq!(split("/2021-04-06/proxy/s/f"), Some(("s", "f", "/")));
        assert_eq!(split("/2021-04-06/proxy/s/f/"), Some(("s", "f", "/")));
        assert_eq!(split("/2016-08-15/proxy/s"), None);
        assert_eq!(split("/2016-08-15/services/s"), None);
    }
}
