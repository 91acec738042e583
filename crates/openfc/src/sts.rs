//! openfc's STS: temporary credentials for a role, handed to the functions of a service that names it
//! (`context.credentials`), and accepted back by the API with the security-token header the SDKs send.
//!
//! Stateless, so every node sharing the master key mints and checks them without a table or a round trip:
//! the AccessKeyId is `STS.` and random text; its secret is derived from it (an HMAC under a key derived from
//! the master key), so only openfc can compute it; the security token carries the account, the role, the
//! AccessKeyId and the expiry, sealed by another derived key. What the role may do is read at each request
//! (the role's policy as stored now), so a changed policy or a deleted role takes effect at once; a token
//! cannot outlive its expiry.
//!
//! Functions get credentials per invocation; minting (two HMACs, JSON, base64) is skipped while the role's
//! last credentials still have more than half their lifetime left (`Sts::issue_at`). Each node keeps its own
//! such cache and nothing needs sharing: a token is checked by its seal alone, so one minted on any node is
//! accepted on every node with the same master key.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use hmac::{Hmac, KeyInit, Mac};
use openfc_core::invocation::{CredentialIssuer, Credentials};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::keys::MasterKey;

/// The AccessKeyId prefix of temporary credentials (the SDKs send the token only for ids starting with it).
pub const KEY_PREFIX: &str = "STS.";
/// How long minted credentials are accepted. FC's are valid for the length of an STS session; functions are
/// expected to use the ones of the invocation at hand.
pub const DEFAULT_TTL_SECS: u64 = 3600;
const TOKEN_VERSION: &str = "openfc1";
/// Roles whose credentials are kept for reuse; past it the cache starts over (minting is only a little slower).
const MAX_CACHED_ROLES: usize = 4096;

#[derive(Serialize, Deserialize)]
struct Claims {
    /// Account
    a: String,
    /// Role name
    r: String,
    /// AccessKeyId
    k: String,
    /// Expiry, unix seconds
    e: u64,
}

/// What a valid token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub account: String,
    pub role: String,
    pub expires: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Missing,
    Invalid,
    Expired,
}

pub struct Sts {
    token_key: [u8; 32],
    secret_key: [u8; 32],
    ttl_secs: u64,
    /// The last credentials issued per (account, role), with the unix second they were minted.
    issued: Mutex<HashMap<(String, String), (Credentials, u64)>>,
}

fn mac(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// The current unix time in seconds, as [`Sts::check`] takes it.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Sts {
    pub fn new(master: &MasterKey, ttl_secs: u64) -> Sts {
        Sts {
            token_key: master.derive("openfc sts token v1"),
            secret_key: master.derive("openfc sts secret v1"),
            ttl_secs: ttl_secs.max(60),
            issued: Mutex::new(HashMap::new()),
        }
    }

    /// The secret of a temporary AccessKeyId.
    pub fn secret_of(&self, access_key_id: &str) -> String {
        let full = B64URL.encode(mac(&self.secret_key, access_key_id.as_bytes()));
        full[..30].to_owned()
    }

    /// Credentials for `role` of `account`, valid from `now` (unix seconds) for the configured time.
    pub fn mint(&self, account: &str, role: &str, now: u64) -> Credentials {
        let mut id = [0u8; 18];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut id);
        let access_key_id = format!("{KEY_PREFIX}{}", B64URL.encode(id).replace(['-', '_'], "x"));
        let claims = Claims { a: account.to_owned(), r: role.to_owned(), k: access_key_id.clone(), e: now + self.ttl_secs };
        let body = B64URL.encode(serde_json::to_vec(&claims).expect("claims serialize"));
        let signed = format!("{TOKEN_VERSION}.{body}");
        let token = format!("{signed}.{}", B64URL.encode(mac(&self.token_key, signed.as_bytes())));
        Credentials { access_key_secret: self.secret_of(&access_key_id), access_key_id, security_token: token }
    }

    /// Credentials for `role` of `account` at `now`: the ones issued last while they have more than half
    /// their lifetime left (so a function always gets at least half of it), else new ones.
    pub fn issue_at(&self, account: &str, role: &str, now: u64) -> Credentials {
        let reusable = |minted: u64| now < minted + self.ttl_secs / 2;
        let key = (account.to_owned(), role.to_owned());
        let cached = self.issued.lock().expect("sts cache lock").get(&key).filter(|(_, at)| reusable(*at)).cloned();
        if let Some((creds, _)) = cached {
            return creds;
        }
        let creds = self.mint(account, role, now);
        let mut issued = self.issued.lock().expect("sts cache lock");
        // Entries that would not be reused again go now, so the map holds only the roles in use.
        issued.retain(|_, (_, at)| reusable(*at));
        if issued.len() >= MAX_CACHED_ROLES {
            issued.clear();
        }
        issued.insert(key, (creds.clone(), now));
        creds
    }

    /// Checks `token` as presented with `access_key_id` at `now`: what it grants.
    pub fn check(&self, access_key_id: &str, token: Option<&str>, now: u64) -> Result<Grant, TokenError> {
        let token = token.filter(|t| !t.is_empty()).ok_or(TokenError::Missing)?;
        let (signed, tag) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let body = signed.strip_prefix(TOKEN_VERSION).and_then(|b| b.strip_prefix('.')).ok_or(TokenError::Invalid)?;
        let tag = B64URL.decode(tag).map_err(|_| TokenError::Invalid)?;
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.token_key).expect("any key length");
        m.update(signed.as_bytes());
        m.verify_slice(&tag).map_err(|_| TokenError::Invalid)?;
        let claims: Claims =
            serde_json::from_slice(&B64URL.decode(body).map_err(|_| TokenError::Invalid)?).map_err(|_| TokenError::Invalid)?;
        if claims.k != access_key_id {
            return Err(TokenError::Invalid);
        }
        if now >= claims.e {
            return Err(TokenError::Expired);
        }
        Ok(Grant { account: claims.a, role: claims.r, expires: claims.e })
    }
}

impl std::fmt::Debug for Sts {
    /// Never the keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sts").field("ttl_secs", &self.ttl_secs).finish_non_exhaustive()
    }
}

impl CredentialIssuer for Sts {
    fn issue(&self, account: &str, role: &str) -> Credentials {
        self.issue_at(account, role, now_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts() -> Sts {
        let dir = tempfile::tempdir().unwrap();
        Sts::new(&MasterKey::load_or_create(&dir.path().join("k")).unwrap(), 3600)
    }

    #[test]
    fn a_minted_token_grants_its_role_until_it_expires() {
        let s = sts();
        let c = s.mint("123", "reader", 1000);
        assert!(c.access_key_id.starts_with(KEY_PREFIX));
        assert_eq!(s.secret_of(&c.access_key_id), c.access_key_secret);
        let g = s.check(&c.access_key_id, Some(&c.security_token), 2000).unwrap();
        assert_eq!(g, Grant { account: "123".into(), role: "reader".into(), expires: 4600 });
        assert_eq!(s.check(&c.access_key_id, Some(&c.security_token), 4600), Err(TokenError::Expired));
        assert_eq!(s.check(&c.access_key_id, None, 2000), Err(TokenError::Missing));
    }

    #[test]
    fn a_token_is_bound_to_its_key_and_cannot_be_altered() {
        let s = sts();
        let (a, b) = (s.mint("123", "reader", 1000), s.mint("123", "reader", 1000));
        assert_ne!(a.access_key_id, b.access_key_id);
        assert_eq!(s.check(&b.access_key_id, Some(&a.security_token), 2000), Err(TokenError::Invalid));
        // Another role or a later expiry, re-encoded without the key: refused.
        let forged_claims = Claims { a: "123".into(), r: "admin".into(), k: a.access_key_id.clone(), e: 99_999 };
        let body = B64URL.encode(serde_json::to_vec(&forged_claims).unwrap());
        let tag = a.security_token.rsplit_once('.').unwrap().1;
        let forged = format!("{TOKEN_VERSION}.{body}.{tag}");
        assert_eq!(s.check(&a.access_key_id, Some(&forged), 2000), Err(TokenError::Invalid));
        assert_eq!(s.check(&a.access_key_id, Some("garbage"), 2000), Err(TokenError::Invalid));
        // Another master key: nothing is accepted.
        assert_eq!(sts().check(&a.access_key_id, Some(&a.security_token), 2000), Err(TokenError::Invalid));
    }

    #[test]
    fn a_role_gets_the_same_credentials_for_half_their_lifetime() {
        let s = sts();
        let first = s.issue_at("123", "reader", 1000);
        let again = s.issue_at("123", "reader", 1000 + 1799);
        assert_eq!((&again.access_key_id, &again.security_token), (&first.access_key_id, &first.security_token));
        assert_eq!(again.access_key_secret, first.access_key_secret);
        // Half the lifetime gone: new ones, reused in their turn.
        let renewed = s.issue_at("123", "reader", 1000 + 1800);
        assert_ne!(renewed.access_key_id, first.access_key_id);
        assert_eq!(s.check(&renewed.access_key_id, Some(&renewed.security_token), 1000 + 3700).unwrap().expires, 6400);
        assert_eq!(s.issue_at("123", "reader", 3000).access_key_id, renewed.access_key_id);
        // Another role or another account never shares them.
        let other_role = s.issue_at("123", "writer", 3000);
        let other_account = s.issue_at("456", "reader", 3000);
        let grant = |c: &Credentials| s.check(&c.access_key_id, Some(&c.security_token), 3000).unwrap();
        assert_eq!((grant(&other_role).account, grant(&other_role).role), ("123".into(), "writer".into()));
        assert_eq!((grant(&other_account).account, grant(&other_account).role), ("456".into(), "reader".into()));
        assert_ne!(other_role.access_key_id, renewed.access_key_id);
        assert_ne!(other_account.access_key_id, renewed.access_key_id);
    }

    #[test]
    fn the_cache_keeps_only_reusable_credentials() {
        let s = sts();
        s.issue_at("123", "old", 1000);
        s.issue_at("123", "current", 2000);
        assert_eq!(s.issued.lock().unwrap().len(), 2);
        // At 2800 "old" (minted at 1000) is past its half-life: inserting another role drops it.
        s.issue_at("123", "new", 2800);
        let mut kept: Vec<String> = s.issued.lock().unwrap().keys().map(|(_, r)| r.clone()).collect();
        kept.sort();
        assert_eq!(kept, ["current", "new"]);
    }
}
