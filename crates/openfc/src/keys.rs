//! AccessKeys: the master key that seals secrets at rest (ChaCha20-Poly1305, the key id as associated data)
//! and signs code URLs; first-start bootstrap of the account and its root key; and the `Keyring`, a short-TTL
//! cache of key lookups for request authentication.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hmac::{Hmac, KeyInit as HmacKeyInit, Mac};
use openfc_auth::SecretKey;
use openfc_core::policy::Policy;
use openfc_core::ports::{AccessKeyRecord, AccountRecord, KeyStatus, MetaError, MetaStore};
use rand::RngCore;
use sha2::Sha256;

/// The server's master secret. Never logged (no Debug).
pub struct MasterKey([u8; 32]);

impl MasterKey {
    /// Loads the key file, creating it (mode 0600) when missing.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut key = [0u8; 32];
            rand::rng().fill_bytes(&mut key);
            let created = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
            match created {
                Ok(mut f) => {
                    f.write_all(hex::encode(key).as_bytes())?;
                    f.sync_all()?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let bytes = hex::decode(text.trim()).context("master key file must hold 64 hex characters")?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| anyhow::anyhow!("master key must be 32 bytes"))?;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            bail!("{} is readable by others (mode {:o}); chmod 600 it", path.display(), mode & 0o777);
        }
        Ok(MasterKey(key))
    }

    /// A key derived for one purpose, so sealing and URL signing never share key material.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as HmacKeyInit>::new_from_slice(&self.0).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&self.derive("openfc access key sealing v1").into())
    }

    pub fn seal(&self, key_id: &str, secret: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: secret.as_bytes(), aad: key_id.as_bytes() })
            .expect("encryption of a short secret cannot fail");
        B64.encode([&nonce[..], &sealed].concat())
    }

    pub fn open(&self, key_id: &str, sealed: &str) -> anyhow::Result<SecretKey> {
        let raw = B64.decode(sealed).context("sealed secret is not base64")?;
        if raw.len() < 12 {
            bail!("sealed secret is too short");
        }
        let (nonce, body) = raw.split_at(12);
        let plain = self
            .cipher()
            .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad: key_id.as_bytes() })
            .map_err(|_| anyhow::anyhow!("sealed secret of {key_id} does not open with this master key"))?;
        Ok(SecretKey::new(String::from_utf8(plain)?))
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random_text(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| ALNUM[(rng.next_u32() as usize) % ALNUM.len()] as char).collect()
}

/// A new AccessKey: an id in Alibaba's `LTAI` style and a 30-character secret.
pub fn new_access_key(master: &MasterKey, account: &str, now: &str) -> (AccessKeyRecord, String) {
    let id = format!("LTAI{}", random_text(20));
    let secret = random_text(30);
    let rec = AccessKeyRecord {
        sealed_secret: master.seal(&id, &secret),
        id,
        account_id: account.to_owned(),
        status: KeyStatus::Active,
        created_time: now.to_owned(),
        policy: None,
    };
    (rec, secret)
}

/// A 16-digit account id, as Alibaba Cloud's.
pub(crate) fn new_account_id() -> String {
    let mut rng = rand::rng();
    let first = (b'1' + (rng.next_u32() % 9) as u8) as char;
    std::iter::once(first).chain((0..15).map(|_| (b'0' + (rng.next_u32() % 10) as u8) as char)).collect()
}

/// What first start created, to be shown once.
pub struct Bootstrapped {
    pub account_id: String,
    pub access_key_id: String,
    pub secret: String,
}

/// Makes sure an account exists. Returns its id, and the root key when this call created it.
pub async fn ensure_account(
    meta: &dyn MetaStore,
    master: &MasterKey,
    now: &str,
) -> anyhow::Result<(String, Option<Bootstrapped>)> {
    if let Some(acct) = meta.first_account().await? {
        return Ok((acct.id, None));
    }
    let account = AccountRecord { id: new_account_id(), created_time: now.to_owned() };
    let (key, secret) = new_access_key(master, &account.id, now);
    match meta.create_first_account(&account, &key).await {
        Ok(()) => Ok((
            account.id.clone(),
            Some(Bootstrapped { account_id: account.id, access_key_id: key.id, secret }),
        )),
        // Another node created it first.
        Err(MetaError::AlreadyExists) => {
            let acct = meta.first_account().await?.context("account vanished during bootstrap")?;
            Ok((acct.id, None))
        }
        Err(e) => Err(e.into()),
    }
}

/// A resolved key, as authentication needs it.
#[derive(Clone)]
pub struct ActiveKey {
    pub account_id: String,
    pub secret: SecretKey,
    pub status: KeyStatus,
    /// The key's policy; `None`: the account's root key.
    pub policy: Option<Arc<Policy>>,
}

#[derive(Debug)]
pub enum KeyLookup {
    Unknown,
    Backend(String),
}

pub struct Keyring {
    meta: Arc<dyn MetaStore>,
    master: Arc<MasterKey>,
    ttl: Duration,
    cache: RwLock<HashMap<String, (Instant, ActiveKey)>>,
    /// The policies of roles that temporary credentials act as, kept for the same TTL as keys.
    roles: RolePolicies,
    /// Where nodes sharing a database record accepted signatures (see `api::auth`); `None` on SQLite.
    ledger: Option<Arc<dyn openfc_core::cluster::SignatureLedger>>,
    /// Temporary credentials of roles (`sts`); `None`: `STS.` keys are unknown.
    sts: Option<Arc<crate::sts::Sts>>,
}

/// Why temporary credentials were refused.
#[derive(Debug)]
pub enum TemporaryKeyError {
    /// No token, a forged or malformed one, or one minted for another AccessKeyId.
    Invalid(&'static str),
    Expired,
    /// The role was deleted since the credentials were handed out.
    RoleGone(String),
    Backend(String),
}

impl Keyring {
    pub fn new(meta: Arc<dyn MetaStore>, master: Arc<MasterKey>, ttl: Duration) -> Self {
        let (cache, roles) = (RwLock::new(HashMap::new()), RolePolicies::new(ttl));
        Keyring { meta, master, ttl, cache, roles, ledger: None, sts: None }
    }

    /// Accepts the temporary credentials `sts` mints.
    pub fn with_sts(mut self, sts: Arc<crate::sts::Sts>) -> Self {
        self.sts = Some(sts);
        self
    }

    /// A temporary AccessKey (`STS.…`) presented with its security token: the role's account, the secret the
    /// id derives, and the role's policy as stored now (cached like keys, for the keyring's TTL).
    pub async fn temporary(&self, id: &str, token: Option<&str>) -> Result<ActiveKey, TemporaryKeyError> {
        use crate::sts::TokenError;
        let sts = self.sts.as_ref().ok_or(TemporaryKeyError::Invalid("temporary credentials are not accepted here"))?;
        let grant = sts.check(id, token, crate::sts::now_secs()).map_err(|e| match e {
            TokenError::Missing => TemporaryKeyError::Invalid("the security token is missing (x-fc-security-token / x-acs-security-token)"),
            TokenError::Invalid => TemporaryKeyError::Invalid("the security token is not valid for this AccessKeyId"),
            TokenError::Expired => TemporaryKeyError::Expired,
        })?;
        let policy = match self.roles.get(&grant.account, &grant.role) {
            Some(p) => p,
            None => {
                let text = crate::rolescli::policy_of(self.meta.as_ref(), &grant.account, &grant.role)
                    .await
                    .map_err(|e| TemporaryKeyError::Backend(e.to_string()))?
                    .ok_or_else(|| TemporaryKeyError::RoleGone(grant.role.clone()))?;
                let policy = Arc::new(Policy::parse(&text).unwrap_or_else(|e| {
                    tracing::error!(role = %grant.role, error = %e, "a role's stored policy is unreadable; it is refused everything");
                    Policy::deny_all()
                }));
                self.roles.put(&grant.account, &grant.role, policy.clone());
                policy
            }
        };
        let secret = SecretKey::new(sts.secret_of(id));
        Ok(ActiveKey { account_id: grant.account, secret, status: KeyStatus::Active, policy: Some(policy) })
    }

    /// Replays are refused across the nodes sharing `ledger`.
    pub fn with_ledger(mut self, ledger: Arc<dyn openfc_core::cluster::SignatureLedger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    pub fn ledger(&self) -> Option<&Arc<dyn openfc_core::cluster::SignatureLedger>> {
        self.ledger.as_ref()
    }

    /// Forgets every cached key and role policy (another node, `openfc keys` or `openfc roles` changed keys,
    /// roles or policies).
    pub fn forget_all(&self) {
        self.cache.write().expect("keyring lock").clear();
        self.roles.clear();
    }

    pub async fn lookup(&self, id: &str) -> Result<ActiveKey, KeyLookup> {
        if let Some((at, key)) = self.cache.read().expect("keyring lock").get(id)
            && at.elapsed() < self.ttl
        {
            return Ok(key.clone());
        }
        let rec = match self.meta.get_access_key(id).await {
            Ok(r) => r,
            Err(MetaError::NotFound) => {
                self.cache.write().expect("keyring lock").remove(id);
                return Err(KeyLookup::Unknown);
            }
            Err(e) => return Err(KeyLookup::Backend(e.to_string())),
        };
        let secret = self.master.open(&rec.id, &rec.sealed_secret).map_err(|e| KeyLookup::Backend(e.to_string()))?;
        let policy = match rec.policy.as_deref().map(Policy::parse).transpose() {
            Ok(p) => p.map(Arc::new),
            Err(e) => {
                // Stored by an older or buggy writer: refuse everything rather than allow everything.
                tracing::error!(access_key_id = %rec.id, error = %e, "an AccessKey's stored policy is unreadable; it is refused everything");
                Some(Arc::new(Policy::deny_all()))
            }
        };
        let key = ActiveKey { account_id: rec.account_id, secret, status: rec.status, policy };
        let mut cache = self.cache.write().expect("keyring lock");
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(id.to_owned(), (Instant::now(), key.clone()));
        Ok(key)
    }
}

/// Role policies by (account, role), each kept for `ttl` after it was read; a role that is gone is not kept
/// (the next request reads the store again).
struct RolePolicies {
    ttl: Duration,
    map: RwLock<HashMap<RoleId, (Instant, Arc<Policy>)>>,
}

/// (account, role name)
type RoleId = (String, String);

impl RolePolicies {
    /// Past this many roles the cache starts over, as the key cache does.
    const MAX: usize = 10_000;

    fn new(ttl: Duration) -> Self {
        RolePolicies { ttl, map: RwLock::new(HashMap::new()) }
    }

    fn get(&self, account: &str, role: &str) -> Option<Arc<Policy>> {
        let map = self.map.read().expect("role policy lock");
        let (at, policy) = map.get(&(account.to_owned(), role.to_owned()))?;
        (at.elapsed() < self.ttl).then(|| policy.clone())
    }

    fn put(&self, account: &str, role: &str, policy: Arc<Policy>) {
        let mut map = self.map.write().expect("role policy lock");
        if map.len() > Self::MAX {
            map.clear();
        }
        map.insert((account.to_owned(), role.to_owned()), (Instant::now(), policy));
    }

    fn clear(&self) {
        self.map.write().expect("role policy lock").clear();
    }
}

/// Writes the bootstrap credentials for the operator, readable only by the owner.
pub fn write_credentials(path: &Path, creds: &serde_json::Value) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(serde_json::to_string_pretty(creds)?.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_binds_the_key_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let m = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let sealed = m.seal("LTAIabc", "s3cret");
        assert!(!sealed.contains("s3cret"));
        assert_eq!(m.open("LTAIabc", &sealed).unwrap().expose(), "s3cret");
        assert!(m.open("LTAIother", &sealed).is_err());
        let again = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(again.open("LTAIabc", &sealed).unwrap().expose(), "s3cret");
        assert_ne!(m.derive("a"), m.derive("b"));
    }

    #[test]
    fn ids_have_their_shapes() {
        let id = new_account_id();
        assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_digit()) && !id.starts_with('0'));
        let m = MasterKey([7; 32]);
        let (rec, secret) = new_access_key(&m, &id, "t");
        assert!(rec.id.starts_with("LTAI") && rec.id.len() == 24 && secret.len() == 30);
    }

    #[test]
    fn role_policies_are_kept_for_the_ttl_per_account_and_role_until_cleared() {
        let policy = Arc::new(Policy::deny_all());
        let roles = RolePolicies::new(Duration::from_secs(60));
        roles.put("123", "reader", policy.clone());
        assert!(Arc::ptr_eq(&roles.get("123", "reader").unwrap(), &policy));
        assert!(roles.get("123", "writer").is_none() && roles.get("456", "reader").is_none());
        roles.clear();
        assert!(roles.get("123", "reader").is_none());
        let expired = RolePolicies::new(Duration::ZERO);
        expired.put("123", "reader", policy);
        assert!(expired.get("123", "reader").is_none());
    }
}
