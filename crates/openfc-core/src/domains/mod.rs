//! Custom domains (spec §5.8): their use cases (create, get, update, delete, list), who owns a name, and
//! routing — which function a request to a custom domain reaches, and with which path.
//!
//! Names. A domain keeps the spelling it was created with (`domainName` in every response) and is found
//! whatever the case: it is stored under its lower-cased name, the original spelling in its body.
//!
//! Owners. Domain names are global on FC: one account per name. Documents are per account, so the owner of
//! each name is one more document, `customDomainOwner/{name}` under the reserved account id [`OWNERS`],
//! written with a conditional insert (or a conditional update on its ETag) before the domain itself — the
//! database decides between concurrent creators, on one node or many. A request to a custom domain reaches
//! the owner's routes: that is how its account is found (a request is anonymous unless it is signed, as for
//! HTTP triggers). A claim whose domain is gone (a create that failed half-way) is taken over by another
//! account only after [`CLAIM_GRACE`], so a create still in flight is never overtaken.
//!
//! Routing. `routeConfig.routes` are tried as FC does: exact paths before `/*` prefixes, longer prefixes
//! before shorter ones (configuration order among equals); a route whose `methods` (if any) do not include
//! the request's is skipped. Then the route's `rewriteConfig` rewrites the path: `equalRules` first, then
//! `wildcardRules`, then `regexRules`, each list in order, and the first rule that matches is the only one
//! applied (see [`Rewrite`]). Routes are compiled once per stored version of a domain (its ETag), and the
//! host → domain lookup goes through a node-local TTL cache (`DomainCache`): a request does not read the
//! database; writes invalidate it at once on every node (`cluster::Change::Domain`), the TTL backing a lost message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cache::ReadCache;
use crate::error::{CoreError, CoreResult, meta_err};
use crate::names::{FunctionName, Qualifier, ServiceName};
use crate::page::PageQuery;
use crate::ports::{Document, MetaError};
use crate::usecase::{Fc, new_etag};
use crate::wire::lenient::{Field, Shape, parse_body};

pub use crate::dockey::CUSTOM_DOMAIN as DOMAIN;
/// Kind of the documents naming the owner of each domain name (`{"accountId": ...}`), keyed by name.
const OWNER: &str = "customDomainOwner";
/// The account id the owner documents live under: no real account has it (ids are 16 digits).
const OWNERS: &str = "*";
/// How old an owner document without its domain must be before another account may take the name over.
const CLAIM_GRACE: Duration = Duration::from_secs(60);

/// Bounds of one domain's configuration, so a config cannot make routing slow or big.
const MAX_ROUTES: usize = 100;
/// Rewrite rules of every kind, over all the routes of a domain.
const MAX_RULES: usize = 200;
const MAX_PATTERN: usize = 1024;
/// Compiled size of one regex (`RegexBuilder::size_limit`), and its lazy DFA's cache.
const REGEX_SIZE: usize = 64 * 1024;
const REGEX_DFA_SIZE: usize = 256 * 1024;

// ---- request and stored shapes ----

static RULE: Shape = Shape::Object(&[Field("match", &Shape::Any), Field("replacement", &Shape::Any)]);
static REWRITE: Shape = Shape::Object(&[
    Field("equalRules", &Shape::ArrayOf(&RULE)),
    Field("wildcardRules", &Shape::ArrayOf(&RULE)),
    Field("regexRules", &Shape::ArrayOf(&RULE)),
]);
static ROUTE: Shape = Shape::Object(&[
    Field("path", &Shape::Any),
    Field("serviceName", &Shape::Any),
    Field("functionName", &Shape::Any),
    Field("qualifier", &Shape::Any),
    Field("methods", &Shape::Any),
    Field("rewriteConfig", &REWRITE),
]);
static DOMAIN_SHAPE: Shape = Shape::Object(&[
    Field("domainName", &Shape::Any),
    Field("protocol", &Shape::Any),
    Field("routeConfig", &Shape::Object(&[Field("routes", &Shape::ArrayOf(&ROUTE))])),
    Field("certConfig", &Shape::Object(&[
        Field("certName", &Shape::Any),
        Field("certificate", &Shape::Any),
        Field("privateKey", &Shape::Any),
    ])),
    Field("tlsConfig", &Shape::Object(&[
        Field("minVersion", &Shape::Any),
        Field("maxVersion", &Shape::Any),
        Field("cipherSuites", &Shape::Any),
    ])),
    Field("wafConfig", &Shape::Object(&[Field("enableWAF", &Shape::Any)])),
]);

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Rule {
    #[serde(rename = "match")]
    pattern: String,
    replacement: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RewriteConfig {
    equal_rules: Vec<Rule>,
    wildcard_rules: Vec<Rule>,
    regex_rules: Vec<Rule>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Route {
    path: String,
    service_name: String,
    function_name: String,
    qualifier: String,
    methods: Vec<String>,
    rewrite_config: Option<RewriteConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct RouteConfig {
    routes: Vec<Route>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct CertConfig {
    cert_name: String,
    certificate: String,
    private_key: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct TlsConfig {
    min_version: String,
    max_version: String,
    cipher_suites: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct WafConfig {
    #[serde(rename = "enableWAF")]
    enable_waf: bool,
}

/// A request body, and the stored document's body (where `domainName` is the spelling it was created with).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DomainBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    domain_name: Option<String>,
    protocol: Option<String>,
    route_config: Option<RouteConfig>,
    cert_config: Option<CertConfig>,
    tls_config: Option<TlsConfig>,
    waf_config: Option<WafConfig>,
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"];
const TLS: &[&str] = &["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"];

/// A host name as FC takes it: labels of letters, digits and '-', at most 63 each and 253 in all, at least
/// two labels, a top-level label of two or more letters (so no IP address), and `*` as the first label of a
/// wildcard domain.
fn check_domain_name(name: &str) -> CoreResult<()> {
    let labels: Vec<&str> = name.split('.').collect();
    let ok = name.len() <= 253
        && labels.len() >= 2
        && labels.last().is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()))
        && labels.iter().enumerate().all(|(i, l)| {
            (!l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
                || (i == 0 && *l == "*")
        });
    if ok { Ok(()) } else { Err(bad_domain_name(name)) }
}

/// FC's own message for a bad domain name (lower-case "domain name", as FC writes it), with openfc's rule.
fn bad_domain_name(name: &str) -> CoreError {
    CoreError::bad_format("domain name", DOMAIN_PATTERN, name)
}

/// The rule `check_domain_name` applies (bar the 253-character total), as a pattern for messages.
const DOMAIN_PATTERN: &str = r"^(\*\.)?([a-z0-9A-Z]([-a-z0-9A-Z]{0,61}[a-z0-9A-Z])?\.)+[a-zA-Z]{2,}$";

/// The domain name a `Host` header names: port and a final dot dropped, lower-cased; `None` for what cannot
/// be a custom domain (IP addresses, `localhost`, malformed values).
pub fn host_name(host: &str) -> Option<String> {
    let host = host.trim();
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        Some(_) => return None,
        None => host,
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    (!name.contains('*') && check_domain_name(&name).is_ok()).then_some(name)
}

/// Visible ASCII but '#': what may appear in a request target, so a rewritten URI is always one.
fn uri_safe(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic() && b != b'#')
}

impl DomainBody {
    fn validate(&self) -> CoreResult<()> {
        let protocol = self.protocol.as_deref().unwrap_or("HTTP");
        if !["HTTP", "HTTPS", "HTTP,HTTPS"].contains(&protocol) {
            return Err(CoreError::invalid_value("Protocol", "HTTP | HTTPS | HTTP,HTTPS", protocol));
        }
        let cert = self.cert_config.as_ref().filter(|c| !c.certificate.is_empty());
        if protocol.contains("HTTPS") && cert.is_none_or(|c| c.private_key.is_empty() || c.cert_name.is_empty()) {
            return Err(CoreError::required_hint(
                "CertConfig",
                "Protocol HTTPS needs certConfig with certName, certificate and privateKey.",
            ));
        }
        if let Some(c) = cert
            && (!c.certificate.contains("BEGIN CERTIFICATE") || !c.private_key.contains("PRIVATE KEY"))
        {
            // FC's sentence without its `actual`, which would echo the private key.
            return Err(CoreError::invalid(
                "CertConfig is set to an invalid value (allowed: a PEM certificate and a PEM private key)",
            ));
        }
        if let Some(t) = &self.tls_config {
            for v in [&t.min_version, &t.max_version] {
                if !v.is_empty() && !TLS.contains(&v.as_str()) {
                    return Err(CoreError::invalid_value("TlsConfig.Version", TLS.join(" | "), v));
                }
            }
        }
        compile_routes(self.route_config.as_ref(), true).map(|_| ())
    }
}

/// The response body of a domain: its stored body with the spelling it was created with, the private key
/// never shown (`null`), and the fields FC adds.
pub fn domain_json(doc: &Document) -> Value {
    let mut out = doc.body.as_object().cloned().unwrap_or_default();
    if let Some(Value::Object(cert)) = out.get_mut("certConfig") {
        cert.insert("privateKey".into(), Value::Null);
    }
    if !out.get("domainName").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(&doc.key)) {
        out.insert("domainName".into(), doc.key.clone().into());
    }
    out.insert("accountId".into(), doc.account_id.clone().into());
    out.insert("apiVersion".into(), "2016-08-15".into());
    out.insert("createdTime".into(), doc.created_time.clone().into());
    out.insert("lastModifiedTime".into(), doc.modified_time.clone().into());
    Value::Object(out)
}

fn to_body<T: Serialize>(v: &T) -> CoreResult<Value> {
    serde_json::to_value(v).map_err(|e| CoreError::Internal(e.to_string()))
}

/// Where a domain name is stored and looked up.
fn key_of(name: &str) -> String {
    crate::dockey::DocKey::CustomDomain { name }.key()
}

fn owner_of(claim: &Document) -> &str {
    claim.body.get("accountId").and_then(Value::as_str).unwrap_or("")
}

mod routing;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod fuzz_tests;

pub use routing::{DomainCache, DomainRoutes, RouteMiss, Routed};
use routing::compile_routes;

impl Fc {
    // ---- use cases ----

    async fn domain_doc(&self, account: &str, name: &str) -> CoreResult<Document> {
        self.meta
            .get_doc(account, DOMAIN, &key_of(name))
            .await
            .map_err(meta_err(|| CoreError::DomainNameNotFound(name.to_owned())))
    }

    pub async fn create_custom_domain(&self, account: &str, body: &[u8]) -> CoreResult<Document> {
        let mut req: DomainBody = parse_body(body, &DOMAIN_SHAPE)?;
        let name = req.domain_name.clone().ok_or_else(|| CoreError::required("DomainName"))?;
        let key = key_of(&name);
        check_domain_name(&key).map_err(|_| bad_domain_name(&name))?;
        req.protocol.get_or_insert_with(|| "HTTP".into());
        req.route_config.get_or_insert_with(RouteConfig::default);
        req.validate()?;
        let now = self.timestamp();
        let doc = Document {
            account_id: account.to_owned(),
            kind: DOMAIN,
            key: key.clone(),
            body: to_body(&req)?,
            etag: new_etag(),
            created_time: now.clone(),
            modified_time: now,
        };
        let taken = || CoreError::DomainNameAlreadyExists(name.clone());
        let claim = self.claim_domain(account, &key).await?.ok_or_else(taken)?;
        match self.meta.create_doc(&doc).await {
            Ok(()) => {}
            // This account has it already (its claim was renewed, and stays).
            Err(MetaError::AlreadyExists) => return Err(taken()),
            Err(e) => {
                self.release_domain(account, &key, &claim).await;
                return Err(e.into());
            }
        }
        // A claim is taken over only after CLAIM_GRACE without its domain: this create outlived it, and the
        // name went to another account meanwhile.
        if self.owner(&key).await?.is_none_or(|c| owner_of(&c) != account) {
            let _ = self.meta.delete_doc(account, DOMAIN, &key, Some(&doc.etag)).await;
            return Err(taken());
        }
        self.changed(crate::cluster::Change::Domain { key: key.clone() }).await;
        Ok(doc)
    }

    pub async fn get_custom_domain(&self, account: &str, name: &str) -> CoreResult<Document> {
        self.domain_doc(account, name).await
    }

    pub async fn update_custom_domain(&self, account: &str, name: &str, body: &[u8]) -> CoreResult<Document> {
        let patch: DomainBody = parse_body(body, &DOMAIN_SHAPE)?;
        let mut doc = self.domain_doc(account, name).await?;
        let mut current: DomainBody =
            serde_json::from_value(doc.body.clone()).map_err(|e| CoreError::Internal(e.to_string()))?;
        let mut cert = patch.cert_config;
        // The private key is never shown: a certConfig sent back as read (same certificate, no key) keeps it.
        if let (Some(new), Some(old)) = (cert.as_mut(), current.cert_config.as_ref())
            && new.private_key.is_empty()
            && new.certificate == old.certificate
        {
            new.private_key = old.private_key.clone();
        }
        crate::service::replace(&mut current.protocol, patch.protocol);
        crate::service::replace(&mut current.route_config, patch.route_config);
        crate::service::replace(&mut current.cert_config, cert);
        crate::service::replace(&mut current.tls_config, patch.tls_config);
        crate::service::replace(&mut current.waf_config, patch.waf_config);
        current.validate()?;
        current.domain_name.get_or_insert_with(|| doc.key.clone());
        let expected = std::mem::replace(&mut doc.etag, new_etag());
        doc.body = to_body(&current)?;
        doc.modified_time = self.timestamp();
        self.meta
            .update_doc(&doc, &expected)
            .await
            .map_err(meta_err(|| CoreError::DomainNameNotFound(name.to_owned())))?;
        // A domain stored before names had owners gets its claim now, if the name is free.
        if self.owner(&doc.key).await?.is_none() {
            let _ = self.meta.create_doc(&self.claim_doc(account, &doc.key)).await;
        }
        self.changed(crate::cluster::Change::Domain { key: doc.key.clone() }).await;
        Ok(doc)
    }

    pub async fn delete_custom_domain(&self, account: &str, name: &str) -> CoreResult<()> {
        let key = key_of(name);
        self.meta
            .delete_doc(account, DOMAIN, &key, None)
            .await
            .map_err(meta_err(|| CoreError::DomainNameNotFound(name.to_owned())))?;
        if let Ok(Some(claim)) = self.owner(&key).await
            && owner_of(&claim) == account
        {
            self.release_domain(account, &key, &claim.etag).await;
        }
        self.changed(crate::cluster::Change::Domain { key: key.clone() }).await;
        Ok(())
    }

    pub async fn list_custom_domains(&self, account: &str, page: &PageQuery) -> CoreResult<(Vec<Document>, Option<String>)> {
        let page = PageQuery {
            prefix: page.prefix.as_deref().map(key_of),
            start: page.start.as_deref().map(key_of),
            limit: page.limit,
        };
        self.list_children(account, DOMAIN, "", &page).await
    }

    // ---- owners ----

    fn claim_doc(&self, account: &str, key: &str) -> Document {
        let now = self.timestamp();
        Document {
            account_id: OWNERS.to_owned(),
            kind: OWNER,
            key: key.to_owned(),
            body: json!({"accountId": account}),
            etag: new_etag(),
            created_time: now.clone(),
            modified_time: now,
        }
    }

    async fn owner(&self, key: &str) -> CoreResult<Option<Document>> {
        match self.meta.get_doc(OWNERS, OWNER, key).await {
            Ok(d) => Ok(Some(d)),
            Err(MetaError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes `account` the owner of the name before its domain is written: a new claim, this account's own
    /// claim renewed, or an orphan taken over — each one conditional write. The claim's ETag, or `None` when
    /// another account holds the name.
    async fn claim_domain(&self, account: &str, key: &str) -> CoreResult<Option<String>> {
        let fresh = self.claim_doc(account, key);
        for _ in 0..2 {
            match self.meta.create_doc(&fresh).await {
                Ok(()) => return Ok(Some(fresh.etag)),
                Err(MetaError::AlreadyExists) => {}
                Err(e) => return Err(e.into()),
            }
            // Released meanwhile: try the insert once more.
            let Some(current) = self.owner(key).await? else { continue };
            let holder = owner_of(&current);
            if holder != account {
                let orphan = matches!(self.meta.get_doc(holder, DOMAIN, key).await, Err(MetaError::NotFound))
                    && self.older_than(&current.modified_time, CLAIM_GRACE);
                if !orphan {
                    return Ok(None);
                }
            }
            let renewed = Document { created_time: current.created_time.clone(), ..fresh.clone() };
            return match self.meta.update_doc(&renewed, &current.etag).await {
                Ok(()) => Ok(Some(renewed.etag)),
                Err(MetaError::NotFound | MetaError::PreconditionFailed) => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
        Ok(None)
    }

    /// Gives the name up (best effort: a claim left behind is taken over after the grace).
    async fn release_domain(&self, account: &str, key: &str, etag: &str) {
        if let Err(e) = self.meta.delete_doc(OWNERS, OWNER, key, Some(etag)).await
            && e != MetaError::PreconditionFailed
            && e != MetaError::NotFound
        {
            tracing::warn!(account, domain = key, error = %e, "releasing a custom domain name failed");
        }
    }

    fn older_than(&self, timestamp: &str, age: Duration) -> bool {
        match time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339) {
            Ok(t) => self.clock.now() - t > age,
            Err(_) => true,
        }
    }

    // ---- routing ----

    /// The custom domain a request's `Host` names, if any: the exact name, else a wildcard domain
    /// (`*.example.com` serves `a.example.com`). From the node-local cache; on a miss, two reads (owner, then
    /// the owner's domain) per name tried.
    pub async fn custom_domain_for_host(&self, host: &str) -> CoreResult<Option<Arc<DomainRoutes>>> {
        let Some(name) = host_name(host) else { return Ok(None) };
        if let Some(found) = self.lookup_domain(&name).await? {
            return Ok(Some(found));
        }
        match name.split_once('.') {
            Some((_, parent)) if parent.contains('.') => self.lookup_domain(&format!("*.{parent}")).await,
            _ => Ok(None),
        }
    }

    async fn lookup_domain(&self, key: &str) -> CoreResult<Option<Arc<DomainRoutes>>> {
        if let Some(hit) = self.hot.domains.lookups.get(&key.to_owned()) {
            return Ok(hit);
        }
        let since = self.hot.domains.lookups.epoch();
        let found = match self.owner(key).await? {
            None => None,
            Some(claim) => match self.meta.get_doc(owner_of(&claim), DOMAIN, key).await {
                Ok(doc) => Some(self.hot.domains.compiled(&doc)?),
                Err(MetaError::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
        };
        self.hot.domains.lookups.put(since, key.to_owned(), found.clone());
        Ok(found)
    }
}
