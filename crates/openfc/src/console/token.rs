//! The console's session token: a self-contained, authenticated cookie value, so any node sharing the master
//! key accepts a session another node issued, with no session table. It names the account, the AccessKey id,
//! the expiry and a random session id, under an HMAC with a key derived from the master key for this purpose
//! only; the AccessKey secret is never in it. Revocation is by the key: every request re-reads the key
//! (disabled → refused); a token otherwise lives until it expires, sign-out only drops the browser's copy.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openfc_auth::{sign_token, verify_token};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The cookie's name.
pub const COOKIE: &str = "openfc_session";
/// The header every non-GET console request carries: [`csrf_value`] of its session.
pub const CSRF_HEADER: &str = "x-openfc-csrf";

/// What a session token says, once its MAC checked out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Token format version.
    pub v: u8,
    /// The account owning the key.
    pub account: String,
    /// The AccessKey id the user signed in with.
    pub key: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// A random session id (hex): what the CSRF value is derived from.
    pub sid: String,
}

/// Why a token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    BadSignature,
    Expired,
}

impl Session {
    /// A new session for `key` of `account`, valid `ttl_secs` from `now`.
    pub fn new(account: &str, key: &str, now: i64, ttl_secs: u64) -> Session {
        let mut sid = [0u8; 16];
        rand::rng().fill_bytes(&mut sid);
        Session {
            v: 1,
            account: account.to_owned(),
            key: key.to_owned(),
            exp: now.saturating_add(ttl_secs.min(i64::MAX as u64) as i64),
            sid: hex::encode(sid),
        }
    }

    /// The cookie value: base64url(JSON) "." base64url(HMAC-SHA256(key, that base64)).
    pub fn seal(&self, key: &[u8]) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("a session serializes"));
        let mac = sign_token(key, &format!("session\n{payload}"));
        format!("{payload}.{mac}")
    }

    /// The session a cookie value names, if its MAC is right and it has not expired at `now`.
    pub fn open(key: &[u8], token: &str, now: i64) -> Result<Session, TokenError> {
        let (payload, mac) = token.split_once('.').ok_or(TokenError::Malformed)?;
        if !verify_token(key, &format!("session\n{payload}"), mac) {
            return Err(TokenError::BadSignature);
        }
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Malformed)?;
        let session: Session = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if session.v != 1 {
            return Err(TokenError::Malformed);
        }
        if session.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(session)
    }

    /// The value the page must send in [`CSRF_HEADER`]: an HMAC of the session id, so it is known only to
    /// pages that read it from a same-origin response (sign-in, or the session route), never from the cookie.
    pub fn csrf(&self, key: &[u8]) -> String {
        csrf_value(key, &self.sid)
    }
}

pub fn csrf_value(key: &[u8], sid: &str) -> String {
    sign_token(key, &format!("csrf\n{sid}"))
}

/// Whether `given` is the CSRF value of `session`, compared in constant time.
pub fn csrf_matches(key: &[u8], session: &Session, given: &str) -> bool {
    verify_token(key, &format!("csrf\n{}", session.sid), given)
}

/// The session cookie's value in a `Cookie` header, if any.
pub fn cookie_value(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trip_expiry_and_tampering() {
        let s = Session::new("1234", "LTAIabc", 1000, 60);
        let t = s.seal(KEY);
        assert_eq!(Session::open(KEY, &t, 1000), Ok(s.clone()));
        assert_eq!(Session::open(KEY, &t, 1060), Err(TokenError::Expired));
        assert_eq!(Session::open(b"other", &t, 1000), Err(TokenError::BadSignature));
        assert_eq!(Session::open(KEY, "nodot", 1000), Err(TokenError::Malformed));
        // Another account named in the payload, with the original MAC.
        let forged = Session { account: "9999".into(), ..s.clone() };
        let (_, mac) = t.split_once('.').unwrap();
        let (payload, _) = forged.seal(KEY).split_once('.').map(|(a, b)| (a.to_owned(), b.to_owned())).unwrap();
        assert_eq!(Session::open(KEY, &format!("{payload}.{mac}"), 1000), Err(TokenError::BadSignature));
        assert!(!t.contains(['+', '/', '=', ';', ',', ' ']), "cookie-safe: {t}");
    }

    #[test]
    fn csrf_is_per_session() {
        let a = Session::new("1", "k", 0, 60);
        let b = Session::new("1", "k", 0, 60);
        assert_ne!(a.sid, b.sid);
        assert!(csrf_matches(KEY, &a, &a.csrf(KEY)));
        assert!(!csrf_matches(KEY, &a, &b.csrf(KEY)));
        assert!(!csrf_matches(KEY, &a, ""));
    }

    #[test]
    fn finds_the_cookie_among_others() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(axum::http::header::COOKIE, "a=1; openfc_session=xyz.abc; b=2".parse().unwrap());
        assert_eq!(cookie_value(&h), Some("xyz.abc"));
        h.insert(axum::http::header::COOKIE, "openfc_sessionx=1".parse().unwrap());
        assert_eq!(cookie_value(&h), None);
    }
}
