//! Request authentication: every API request is signed (FC, ACS3 or acs v1); the caller is the account
//! owning the AccessKey. Signature logic lives in `openfc-auth`; this is the glue to HTTP, the keyring and
//! the replay cache.
//!
//! The signature is verified from the request head before a byte of the body is read: no scheme signs the
//! body itself, each signs a header claiming its hash (`Content-MD5`, `x-acs-content-sha256`), and
//! [`Caller::read_body`] checks the body against that claim as it arrives. An unsigned or badly signed
//! request is answered without its body ever being buffered.

use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use openfc_auth::{
    AuthError, BodyCheck, ReplayCache, ReplayClaim, RequestHead, parse_authorization, verify_head,
};
use openfc_core::cluster::{Sighting, SignatureLedger};
use openfc_core::ports::KeyStatus;
use openfc_core::wire::ErrorCode;

use super::error::ApiError;
use crate::keys::{KeyLookup, Keyring};

/// Signatures remembered at most (a few MiB); past that the soonest-expiring are forgotten first.
const REPLAY_CAPACITY: usize = 100_000;
/// How long after the first an identical nonce-less (FC-scheme) request is still taken as the client's own
/// repeat: fc2 signs a 1-second `Date` and no nonce, so two identical calls in one second share a signature.
const REPLAY_GRACE: Duration = Duration::from_secs(5);

/// Signatures of the mutating requests accepted within their clock-skew window (see `openfc_auth::ReplayCache`).
///
/// Checked first; on PostgreSQL (several nodes) a first sighting here is then recorded in the database
/// (`Keyring::ledger`, one conditional INSERT), so a request replayed to another node, or after a restart, is
/// refused there too. SQLite is one process's: this memory is enough (a restart forgets it).
static REPLAYS: LazyLock<Mutex<ReplayCache>> =
    LazyLock::new(|| Mutex::new(ReplayCache::new(REPLAY_CAPACITY, REPLAY_GRACE)));

fn replays() -> MutexGuard<'static, ReplayCache> {
    REPLAYS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A caller whose signature checked out from the request head; its body is still to be read and checked.
pub struct Caller {
    /// The account owning the AccessKey.
    pub account: String,
    /// The key's policy; `None`: the account's root key.
    pub policy: Option<std::sync::Arc<openfc_core::policy::Policy>>,
    body: BodyCheck,
    /// Held when this request was the first with its signature (mutating requests only).
    claim: Option<ReplayClaim>,
    /// The same, in the nodes' shared ledger: (ledger, key, holder).
    shared: Option<(Arc<dyn SignatureLedger>, String, String)>,
}

impl Caller {
    /// A caller the console's session cookie authenticated (`session.rs`): nothing of the body is signed and
    /// there is no signature to remember.
    pub(super) fn from_session(account: String, policy: Option<std::sync::Arc<openfc_core::policy::Policy>>) -> Caller {
        Caller { account, policy, body: BodyCheck::unsigned(), claim: None, shared: None }
    }

    /// Reads the body (at most `max` bytes) and checks it against the signed hash header. A request refused
    /// here did not take effect, so its signature is released for an honest retry.
    pub async fn read_body(&mut self, body: Body, headers: &HeaderMap, max: usize) -> Result<Bytes, ApiError> {
        let mut hasher = self.body.hasher();
        let read = super::read_body(body, headers, max, |chunk| hasher.update(chunk)).await;
        let checked = read.and_then(|bytes| hasher.finish().map(|()| bytes).map_err(map_auth_error));
        if checked.is_err() {
            self.release();
        }
        checked
    }

    /// Settles the replay claim by the request's outcome: a request that failed on the server's side (5xx)
    /// or was throttled (429) did not take effect, and clients resend it unchanged (fc2 Python retries the
    /// same signed PUT/DELETE after a 500, 502 or 504), so its signature is released.
    pub fn settle(&mut self, outcome: &Result<Response, ApiError>) {
        if let Err(e) = outcome
            && (e.code.status() >= 500 || e.code.status() == 429)
        {
            self.release();
        }
    }

    fn release(&mut self) {
        if let Some(claim) = self.claim.take() {
            replays().release(claim);
        }
        if let Some((ledger, key, holder)) = self.shared.take() {
            // Off the response path; if it fails, the client's retry is refused as a replay until the window ends.
            tokio::spawn(async move {
                if let Err(e) = ledger.forget(&key, &holder).await {
                    tracing::warn!(error = %e, "could not release a signature in the shared ledger");
                }
            });
        }
    }
}

/// Authenticates a request from its head: Authorization, key, clock skew, signature, and for mutating
/// requests the replay check. The body is not touched: read it with [`Caller::read_body`].
pub async fn authenticate(keyring: &Keyring, parts: &Parts) -> Result<Caller, ApiError> {
    let header = parts.headers.get("authorization").ok_or_else(|| {
        ApiError::new(ErrorCode::MissingRequiredHeader, "required HTTP header Authorization was not specified")
    })?;
    let header = header.to_str().map_err(|_| bad_header("it is not ASCII"))?;
    let auth = parse_authorization(header).map_err(map_auth_error)?;
    let key = if auth.access_key_id.starts_with(crate::sts::KEY_PREFIX) {
        temporary_key(keyring, &auth.access_key_id, &parts.headers).await?
    } else {
        keyring.lookup(&auth.access_key_id).await.map_err(|e| match e {
            KeyLookup::Unknown => {
                ApiError::new(ErrorCode::InvalidAccessKeyId, format!("invalid access key ID '{}'", auth.access_key_id))
            }
            KeyLookup::Backend(detail) => ApiError::internal(detail),
        })?
    };
    if key.status != KeyStatus::Active {
        return Err(ApiError::new(
            ErrorCode::AccessDenied,
            format!("the access key '{}' is disabled", auth.access_key_id),
        ));
    }
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(parts.headers.len());
    headers.extend(parts.headers.iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v))));
    let head = RequestHead {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query(),
        headers: &headers,
    };
    let verified = verify_head(&auth, &head, &key.secret, time::OffsetDateTime::now_utc()).map_err(map_auth_error)?;
    let refused = |e| {
        tracing::warn!(access_key_id = %auth.access_key_id, method = %parts.method, path = %parts.uri.path(),
            "replayed request refused");
        map_auth_error(e)
    };
    let (claim, shared) = if is_mutating(&parts.method) {
        let admitted =
            replays().admit(verified.replay_key, verified.nonce_signed, verified.valid_for, Instant::now());
        match (admitted.map_err(refused)?, keyring.ledger()) {
            (Some(claim), Some(ledger)) => match shared_sighting(ledger, &verified).await {
                Ok(shared) => (Some(claim), shared),
                Err(e) => {
                    replays().release(claim);
                    return Err(refused(e));
                }
            },
            (claim, _) => (claim, None),
        }
    } else {
        (None, None)
    };
    Ok(Caller { account: key.account_id, policy: key.policy, body: verified.body, claim, shared })
}

/// A role's temporary AccessKey, with the security token the SDKs send beside it (`x-fc-security-token` for the
/// FC scheme, `x-acs-security-token` for ACS3).
async fn temporary_key(keyring: &Keyring, id: &str, headers: &HeaderMap) -> Result<crate::keys::ActiveKey, ApiError> {
    use crate::keys::TemporaryKeyError;
    let token = ["x-fc-security-token", "x-acs-security-token"].iter().find_map(|h| headers.get(*h)).and_then(|v| v.to_str().ok());
    keyring.temporary(id, token).await.map_err(|e| match e {
        TemporaryKeyError::Invalid(why) => ApiError::new(ErrorCode::InvalidAccessKeyId, format!("invalid access key ID '{id}': {why}")),
        TemporaryKeyError::Expired => {
            ApiError::new(ErrorCode::InvalidAccessKeyId, format!("the security token of '{id}' has expired: use the credentials of a newer invocation"))
        }
        TemporaryKeyError::RoleGone(role) => {
            ApiError::new(ErrorCode::InvalidAccessKeyId, format!("the role '{role}' that issued '{id}' no longer exists"))
        }
        TemporaryKeyError::Backend(detail) => ApiError::internal(detail),
    })
}

/// Records a first local sighting in the nodes' shared ledger: the claim to release, `None` for a tolerated
/// repeat (nonce-less, within the grace), or `Replayed`. A ledger that cannot be reached lets the request
/// through (this node's memory still refused what it saw): refusing every write while the database hiccups
/// would be worse, and the write itself needs the database anyway.
async fn shared_sighting(
    ledger: &Arc<dyn SignatureLedger>,
    verified: &openfc_auth::Verified,
) -> Result<Option<(Arc<dyn SignatureLedger>, String, String)>, AuthError> {
    let now = openfc_core::images::now_ms();
    let expires = now + verified.valid_for.as_millis() as i64 + 1000;
    let key = verified.replay_key.hex();
    let holder = uuid::Uuid::new_v4().simple().to_string();
    match ledger.sight(&key, now, expires, &holder).await {
        Ok(Sighting::First) => Ok(Some((ledger.clone(), key, holder))),
        Ok(Sighting::SeenAt(first)) if !verified.nonce_signed && now - first <= REPLAY_GRACE.as_millis() as i64 => Ok(None),
        Ok(Sighting::SeenAt(_)) => Err(AuthError::Replayed),
        Err(e) => {
            tracing::warn!(error = %e, "the shared signature ledger is unreachable; only this node's memory refuses replays");
            Ok(None)
        }
    }
}

/// The authorization step: may this caller perform `action` (an endpoint's RAM action, without `fc:`) on
/// `resource` (its ARN)? Root keys may do anything in their account; a key with a policy what it allows.
pub fn authorize(caller: &Caller, action: &str, resource: &str) -> Result<(), ApiError> {
    use openfc_core::policy::Decision;
    let Some(policy) = &caller.policy else { return Ok(()) };
    let ram_action = format!("fc:{action}");
    match policy.decide(&ram_action, resource) {
        Decision::Allow => Ok(()),
        Decision::Deny | Decision::NotAllowed => Err(ApiError::new(
            ErrorCode::AccessDenied,
            format!("the caller is not authorized to perform '{ram_action}' on resource '{resource}'"),
        )),
    }
}

/// Requests that change something; reads may be repeated freely.
fn is_mutating(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn bad_header(reason: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, format!("the Authorization header is malformed: {reason}"))
}

fn map_auth_error(e: AuthError) -> ApiError {
    match e {
        AuthError::MissingRequiredHeader(h) => {
            ApiError::new(ErrorCode::MissingRequiredHeader, format!("required HTTP header {h} was not specified"))
        }
        AuthError::MalformedAuthorization(reason) => bad_header(&reason),
        AuthError::RequestTimeTooSkewed(msg) => ApiError::new(ErrorCode::RequestTimeTooSkewed, msg),
        AuthError::ContentSha256Mismatch => {
            ApiError::new(ErrorCode::InvalidArgument, "x-acs-content-sha256 does not match the request body")
        }
        AuthError::ContentMd5Mismatch => ApiError::new(
            ErrorCode::InvalidArgument,
            "Content-MD5 does not match the request body (it must be the base64 of the MD5 of the body as sent)",
        ),
        AuthError::RequiredHeaderNotSigned(h) => ApiError::new(
            ErrorCode::SignatureNotMatch,
            format!(
                "The request signature does not cover the '{h}' header: \
                 ACS3-HMAC-SHA256 SignedHeaders must include host and x-acs-date"
            ),
        ),
        AuthError::Replayed => ApiError::new(
            ErrorCode::AccessDenied,
            "this signed request was already received (replayed request refused): \
             a signature can be used once, sign every request anew",
        ),
        AuthError::SignatureNotMatch => ApiError::new(
            ErrorCode::SignatureNotMatch,
            "The request signature we calculated does not match the signature you provided. \
             Check your access key and signing method",
        ),
    }
}
