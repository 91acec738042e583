//! The console's way into the API pipeline: a request without an `Authorization` header that carries the
//! console's session cookie (`console::token`) is authenticated by it instead of a signature. The cookie
//! names the account and AccessKey; the key is read again on every request (disabled or deleted: refused)
//! and its policy is the caller's, so the authorization step that follows is the API's own. Every request
//! that may change something must also carry the CSRF header derived from the session, which a page on
//! another site cannot know (and SameSite=Strict keeps the cookie from its requests in the first place).

use std::sync::Arc;

use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use openfc_core::policy::{Decision, Policy};
use openfc_core::ports::KeyStatus;
use openfc_core::wire::ErrorCode;

use super::App;
use super::auth::Caller;
use super::error::ApiError;
use crate::console::token::{self, CSRF_HEADER, Session, TokenError};
use crate::keys::KeyLookup;

/// A request's valid session and its key's policy (`None`: the account's root key).
pub(crate) struct SignedIn {
    pub session: Session,
    pub policy: Option<Arc<Policy>>,
}

impl SignedIn {
    /// Whether the key's policy allows `fc:{action}` on `resource` (the API's rule: root keys may do anything).
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        self.policy.as_ref().is_none_or(|p| p.decide(&format!("fc:{action}"), resource) == Decision::Allow)
    }
}

/// The API pipeline's second way in: `None` when the request is signed (it has `Authorization`) or has no
/// session cookie, so the signature path answers it as before.
pub(super) async fn authenticate(app: &App, parts: &Parts) -> Option<Result<Caller, ApiError>> {
    if parts.headers.contains_key(header::AUTHORIZATION) {
        return None;
    }
    token::cookie_value(&parts.headers)?;
    Some(signed_in(app, &parts.headers, &parts.method).await.map(|s| Caller::from_session(s.session.account, s.policy)))
}

fn denied(message: &str) -> ApiError {
    ApiError::new(ErrorCode::AccessDenied, message)
}

/// Checks the session cookie (MAC, expiry), the CSRF header for methods that may change something, and that
/// the key is still there and enabled.
pub(crate) async fn signed_in(app: &App, headers: &HeaderMap, method: &Method) -> Result<SignedIn, ApiError> {
    let value = token::cookie_value(headers).ok_or_else(|| denied("not signed in to the console"))?;
    if cross_origin(headers, &app.public_url) {
        return Err(denied("a console session is only accepted from the console's own pages (the Origin differs)"));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let session = Session::open(&app.console.session_key, value, now).map_err(|e| match e {
        TokenError::Expired => denied("the console session has expired; sign in again"),
        TokenError::Malformed | TokenError::BadSignature => denied("the console session is not valid; sign in again"),
    })?;
    if !matches!(*method, Method::GET | Method::HEAD) {
        let given = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !token::csrf_matches(&app.console.session_key, &session, given) {
            return Err(denied(
                "the request lacks the console's X-Openfc-Csrf header or it is wrong (reload the console)",
            ));
        }
    }
    let key = app.keyring.lookup(&session.key).await.map_err(|e| match e {
        KeyLookup::Unknown => denied("the access key of this console session no longer exists; sign in again"),
        KeyLookup::Backend(detail) => ApiError::internal(detail),
    })?;
    if key.status != KeyStatus::Active || key.account_id != session.account {
        return Err(denied(&format!("the access key '{}' is disabled", session.key)));
    }
    Ok(SignedIn { session, policy: key.policy })
}

/// Whether the browser says the request comes from another origin than the console's: a defence besides
/// SameSite for requests that carry no CSRF header (WebSocket handshakes and other GETs); same-origin
/// `fetch` GETs carry no `Origin` at all. The console's origin is the request's host as the browser saw it
/// (`Host`, or `X-Forwarded-Host` behind a proxy that rewrites it) or the public URL's.
fn cross_origin(headers: &HeaderMap, public_url: &str) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return false };
    let host_of =
        |url: &str| url.split_once("://").map_or(url, |(_, rest)| rest).split('/').next().unwrap_or("").to_owned();
    let origin_host = host_of(origin);
    let same = |h: Option<&str>| h.is_some_and(|h| h.trim().eq_ignore_ascii_case(&origin_host));
    let header_value = |name| headers.get(name).and_then(|v: &axum::http::HeaderValue| v.to_str().ok());
    !(same(header_value(header::HOST.as_str()))
        || same(header_value("x-forwarded-host"))
        || same(Some(&host_of(public_url))))
}
