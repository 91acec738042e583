//! The web console at `/console/`: static pages embedded in the binary (`assets`), sign-in and sign-out
//! (`/console/api/session`), and this node's charts (`/console/api/charts`, `charts`). Everything else the
//! pages show comes from the FC API itself, called with the session cookie and the CSRF header
//! (`api::session`), so the console can do exactly what the signed-in key may do through the API.

mod assets;
mod charts;
pub mod series;
pub mod token;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use hmac::{Hmac, KeyInit, Mac};
use openfc_core::ports::KeyStatus;
use openfc_core::wire::ErrorCode;
use sha2::Sha256;

use crate::api::App;
use crate::api::error::ApiError;
use crate::api::session::signed_in;
use crate::keys::KeyLookup;
use token::{COOKIE, Session};

/// The console's settings: the key sessions are sealed with (derived from the master key, which every node
/// of a cluster shares, so any node accepts any node's session) and their lifetime.
pub struct Settings {
    pub session_key: [u8; 32],
    pub session_ttl_secs: u64,
}

/// Largest sign-in body read.
const MAX_SIGN_IN: usize = 4096;

/// Whether a request is the console's: `/console` or under `/console/`.
pub fn owns(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

pub async fn handle(app: &App, parts: Parts, body: Body) -> (&'static str, Result<Response, ApiError>) {
    let path = parts.uri.path();
    let method = &parts.method;
    match path {
        "/console" => ("Console", redirect("/console/")),
        "/console/api/session" => match *method {
            Method::GET | Method::HEAD => ("ConsoleSession", current(app, &parts.headers).await),
            Method::POST => ("ConsoleSignIn", sign_in(app, &parts.headers, body).await),
            Method::DELETE => ("ConsoleSignOut", sign_out(app, &parts.headers, method).await),
            _ => ("ConsoleSession", Err(not_allowed(method, path))),
        },
        "/console/api/charts" if matches!(*method, Method::GET | Method::HEAD) => {
            ("ConsoleCharts", charts::serve(app, &parts).await)
        }
        _ if matches!(*method, Method::GET | Method::HEAD) => match assets::find(path) {
            Some(asset) => ("Console", Ok(assets::serve(asset, &parts.headers))),
            None => ("Console", Err(ApiError::path_not_supported(method.as_str(), path))),
        },
        _ => ("Console", Err(not_allowed(method, path))),
    }
}

fn not_allowed(method: &Method, path: &str) -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, format!("'{method}' against '{path}' is not allowed"))
}

fn redirect(to: &'static str) -> Result<Response, ApiError> {
    Response::builder()
        .status(StatusCode::PERMANENT_REDIRECT)
        .header(header::LOCATION, to)
        .body(Body::empty())
        .map_err(|e| ApiError::internal(format!("building a redirect: {e}")))
}

/// What the page learns about its session: who, until when, and the CSRF value for its changes.
fn describe(app: &App, session: &Session) -> serde_json::Value {
    serde_json::json!({
        "accountId": session.account,
        "accessKeyId": session.key,
        "expires": session.exp,
        "csrf": session.csrf(&app.console.session_key),
        "region": app.region,
        "node": app.fc.cluster.id.to_string(),
    })
}

fn json(status: StatusCode, value: &serde_json::Value, cookie: Option<String>) -> Result<Response, ApiError> {
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store");
    if let Some(cookie) = cookie {
        builder = builder.header(header::SET_COOKIE, cookie);
    }
    builder.body(Body::from(value.to_string())).map_err(|e| ApiError::internal(format!("building a response: {e}")))
}

/// `GET /console/api/session`: the page asks whether it is signed in (after a reload, the CSRF value it kept
/// in memory is gone; the cookie is not).
async fn current(app: &App, headers: &HeaderMap) -> Result<Response, ApiError> {
    let signed = signed_in(app, headers, &Method::GET).await?;
    json(StatusCode::OK, &describe(app, &signed.session), None)
}

/// `Secure` when the browser reached us over TLS: a TLS-terminating proxy says so, or the public URL does.
fn secure(app: &App, headers: &HeaderMap) -> bool {
    let forwarded = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok());
    forwarded.is_some_and(|p| p.trim().eq_ignore_ascii_case("https")) || app.public_url.starts_with("https://")
}

fn cookie(app: &App, headers: &HeaderMap, value: &str, max_age: u64) -> String {
    let secure = if secure(app, headers) { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignIn {
    access_key_id: String,
    access_key_secret: String,
}

/// Whether two secrets are equal, in constant time: their MACs under a per-call key are compared with
/// `verify_slice`.
fn secrets_equal(a: &str, b: &str) -> bool {
    let key: [u8; 32] = rand::random();
    let mac = |s: &str| {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("any key length");
        m.update(s.as_bytes());
        m
    };
    mac(b).verify_slice(&mac(a).finalize().into_bytes()).is_ok()
}

/// `POST /console/api/session` with `{"accessKeyId", "accessKeySecret"}` as JSON: checks the pair against the
/// key store and answers the session cookie. JSON only: a form on another site cannot send it without the
/// browser asking us first (CORS), so nobody is signed in to an attacker's account unawares.
async fn sign_in(app: &App, headers: &HeaderMap, body: Body) -> Result<Response, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.trim().to_ascii_lowercase().starts_with("application/json") {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            "sign-in takes a JSON body (Content-Type: application/json)",
        ));
    }
    let bytes = crate::api::read_body(body, headers, MAX_SIGN_IN, |_| {}).await?;
    let form: SignIn = serde_json::from_slice(&bytes).map_err(|_| {
        ApiError::new(ErrorCode::InvalidArgument, "sign-in takes {\"accessKeyId\": ..., \"accessKeySecret\": ...}")
    })?;
    let wrong = || ApiError::new(ErrorCode::InvalidAccessKeyId, "the AccessKey ID or secret is wrong");
    let key = match app.keyring.lookup(form.access_key_id.trim()).await {
        Ok(key) => key,
        Err(KeyLookup::Unknown) => return Err(wrong()),
        Err(KeyLookup::Backend(detail)) => return Err(ApiError::internal(detail)),
    };
    if !secrets_equal(form.access_key_secret.trim(), key.secret.expose()) {
        tracing::warn!(access_key_id = %form.access_key_id, "console sign-in with a wrong secret");
        return Err(wrong());
    }
    if key.status != KeyStatus::Active {
        return Err(ApiError::new(
            ErrorCode::AccessDenied,
            format!("the access key '{}' is disabled", form.access_key_id.trim()),
        ));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let session = Session::new(&key.account_id, form.access_key_id.trim(), now, app.console.session_ttl_secs);
    let value = session.seal(&app.console.session_key);
    tracing::info!(access_key_id = %session.key, account = %session.account, "console sign-in");
    json(StatusCode::OK, &describe(app, &session), Some(cookie(app, headers, &value, app.console.session_ttl_secs)))
}

/// `DELETE /console/api/session` (with the CSRF header): clears the cookie. The token itself stays valid
/// until it expires (it is self-contained: no node keeps a list of sessions); disabling the key ends every
/// session of it at once.
async fn sign_out(app: &App, headers: &HeaderMap, method: &Method) -> Result<Response, ApiError> {
    signed_in(app, headers, method).await?;
    json(StatusCode::OK, &serde_json::json!({"signedOut": true}), Some(cookie(app, headers, "", 0)))
}

/// Security headers of every console page and asset.
pub(crate) fn harden(headers: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, name: &'static str, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    );
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "referrer-policy", "no-referrer");
    set(headers, "x-frame-options", "DENY");
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_compare() {
        assert!(super::secrets_equal("abc", "abc"));
        assert!(!super::secrets_equal("abc", "abd"));
        assert!(!super::secrets_equal("abc", "abcd"));
        assert!(super::owns("/console") && super::owns("/console/x") && !super::owns("/consolex"));
    }
}
