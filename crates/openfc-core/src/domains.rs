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
//! database; this node's writes invalidate it at once, other nodes' show within the TTL.

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
    if ok { Ok(()) } else { Err(CoreError::invalid(format!("domain name '{name}' is not a valid host name"))) }
}

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
            return Err(CoreError::invalid(format!(
                "Protocol is set to an invalid value (allowed: HTTP | HTTPS | HTTP,HTTPS, actual: '{protocol}')"
            )));
        }
        let cert = self.cert_config.as_ref().filter(|c| !c.certificate.is_empty());
        if protocol.contains("HTTPS") && cert.is_none_or(|c| c.private_key.is_empty() || c.cert_name.is_empty()) {
            return Err(CoreError::invalid("HTTPS needs certConfig with certName, certificate and privateKey"));
        }
        if let Some(c) = cert
            && (!c.certificate.contains("BEGIN CERTIFICATE") || !c.private_key.contains("PRIVATE KEY"))
        {
            return Err(CoreError::invalid("certConfig.certificate and privateKey must be PEM"));
        }
        if let Some(t) = &self.tls_config {
            for v in [&t.min_version, &t.max_version] {
                if !v.is_empty() && !TLS.contains(&v.as_str()) {
                    return Err(CoreError::invalid(format!("tlsConfig version '{v}' is not one of {}", TLS.join(", "))));
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

// ---- routing ----

/// Where a route's `path` matches: itself only, or everything under a prefix (`/login/*` → `/login/...`,
/// `/*` → every path).
#[derive(Debug, Clone, PartialEq, Eq)]
enum RoutePath {
    Exact(String),
    Prefix(String),
}

impl RoutePath {
    fn parse(path: &str) -> CoreResult<Self> {
        if !path.starts_with('/') {
            return Err(CoreError::invalid(format!("route path '{path}' must start with '/'")));
        }
        if path.len() > MAX_PATTERN {
            return Err(CoreError::invalid(format!("route path is longer than {MAX_PATTERN} characters")));
        }
        match path.strip_suffix('*') {
            Some(prefix) if !prefix.contains('*') => Ok(RoutePath::Prefix(prefix.to_owned())),
            None if !path.contains('*') => Ok(RoutePath::Exact(path.to_owned())),
            _ => Err(CoreError::invalid(format!("route path '{path}' may have '*' only at its end"))),
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            RoutePath::Exact(p) => p == path,
            RoutePath::Prefix(p) => path.starts_with(p.as_str()),
        }
    }

    /// Exact paths first, then longer prefixes first.
    fn rank(&self) -> (u8, std::cmp::Reverse<usize>) {
        match self {
            RoutePath::Exact(_) => (0, std::cmp::Reverse(0)),
            RoutePath::Prefix(p) => (1, std::cmp::Reverse(p.len())),
        }
    }
}

/// A route's `rewriteConfig`, compiled. The first rule that matches the request path is the only one
/// applied, trying `equalRules`, then `wildcardRules`, then `regexRules`, each in order:
///
/// * an equal rule matches a path equal to its `match`; the path becomes its `replacement`;
/// * a wildcard rule's `match` is literal but for `*` (any string, `$1`, `$2`... in the replacement) and a
///   leading `^`: without `^` the match may start anywhere in the path (FC: `/old` rewrites `/test/old`
///   to `/new`), and it always runs to the end of the path; the path becomes the replacement;
/// * a regex rule (the `regex` crate's syntax, `$1` / `${name}` in the replacement) rewrites what it
///   matches, every match, the rest of the path staying as it was.
///
/// A replacement with a `?` also sets query parameters: they come first, the request's own follow.
#[derive(Debug, Clone, Default)]
struct Rewrite {
    equal: Vec<(String, String)>,
    wildcard: Vec<(Regex, String)>,
    regex: Vec<(Regex, String)>,
}

fn build_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE)
        .dfa_size_limit(REGEX_DFA_SIZE)
        .build()
        .map_err(|e| e.to_string())
}

/// The regex a wildcard rule stands for.
fn wildcard_regex(pattern: &str) -> String {
    let (anchored, body) = match pattern.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let mut re = String::from(if anchored { "^" } else { "^(?s:.*?)" });
    for (i, literal) in body.split('*').enumerate() {
        if i > 0 {
            re.push_str("(.*)");
        }
        re.push_str(&regex::escape(literal));
    }
    re.push('$');
    re
}

impl Rewrite {
    fn compile(cfg: &RewriteConfig) -> Result<Self, String> {
        let check = |kind: &str, r: &Rule| -> Result<(), String> {
            if r.pattern.is_empty() {
                return Err(format!("{kind} rules need a non-empty match"));
            }
            if r.pattern.len() > MAX_PATTERN || r.replacement.len() > MAX_PATTERN {
                return Err(format!("{kind} rule match and replacement are limited to {MAX_PATTERN} characters"));
            }
            if !uri_safe(&r.replacement) {
                return Err(format!(
                    "{kind} rule replacement '{}' may only have visible ASCII characters but '#'",
                    r.replacement.escape_debug()
                ));
            }
            Ok(())
        };
        let mut out = Rewrite::default();
        for r in &cfg.equal_rules {
            check("equal", r)?;
            out.equal.push((r.pattern.clone(), r.replacement.clone()));
        }
        for r in &cfg.wildcard_rules {
            check("wildcard", r)?;
            let re = build_regex(&wildcard_regex(&r.pattern)).map_err(|e| format!("wildcard rule '{}': {e}", r.pattern))?;
            out.wildcard.push((re, r.replacement.clone()));
        }
        for r in &cfg.regex_rules {
            check("regex", r)?;
            let re = build_regex(&r.pattern).map_err(|e| format!("regex rule '{}' does not compile: {e}", r.pattern))?;
            out.regex.push((re, r.replacement.clone()));
        }
        Ok(out)
    }

    fn len(&self) -> usize {
        self.equal.len() + self.wildcard.len() + self.regex.len()
    }

    /// The path and query the function sees for a request path and query.
    fn apply(&self, path: &str, query: Option<&str>) -> String {
        let rewritten = self
            .equal
            .iter()
            .find(|(m, _)| m == path)
            .map(|(_, r)| r.clone())
            .or_else(|| {
                self.wildcard.iter().find_map(|(re, r)| {
                    re.captures(path).map(|c| {
                        let mut out = String::new();
                        c.expand(r, &mut out);
                        out
                    })
                })
            })
            .or_else(|| {
                self.regex.iter().find(|(re, _)| re.is_match(path)).map(|(re, r)| re.replace_all(path, r.as_str()).into_owned())
            });
        let target = rewritten.as_deref().unwrap_or(path);
        let (new_path, new_query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let mut uri = if new_path.starts_with('/') { new_path.to_owned() } else { format!("/{new_path}") };
        let queries: Vec<&str> = [new_query, query].into_iter().flatten().filter(|q| !q.is_empty()).collect();
        if !queries.is_empty() {
            uri.push('?');
            uri.push_str(&queries.join("&"));
        }
        uri
    }
}

#[derive(Debug, Clone)]
struct CompiledRoute {
    path: RoutePath,
    service: ServiceName,
    function: FunctionName,
    qualifier: Qualifier,
    /// Upper-case; empty: every method.
    methods: Vec<String>,
    rewrite: Rewrite,
}

/// Compiles a domain's routes, ordered for matching. `strict` (writes) refuses the first invalid route or
/// rule; otherwise (a stored config, possibly from before a rule existed) invalid ones are left out.
fn compile_routes(cfg: Option<&RouteConfig>, strict: bool) -> CoreResult<Vec<CompiledRoute>> {
    let routes = cfg.map_or(&[][..], |c| c.routes.as_slice());
    if strict && routes.len() > MAX_ROUTES {
        return Err(CoreError::invalid(format!("a custom domain has at most {MAX_ROUTES} routes")));
    }
    let mut out = Vec::with_capacity(routes.len());
    let mut rules = 0;
    for r in routes.iter().take(MAX_ROUTES) {
        match compile_route(r) {
            Ok(c) if rules + c.rewrite.len() <= MAX_RULES => {
                rules += c.rewrite.len();
                out.push(c);
            }
            Ok(_) if strict => {
                return Err(CoreError::invalid(format!("a custom domain has at most {MAX_RULES} rewrite rules")));
            }
            Err(e) if strict => return Err(e),
            Ok(_) | Err(_) => tracing::warn!(path = %r.path, "stored custom-domain route left out: invalid or over the limits"),
        }
    }
    // Stable: equal ranks keep their configuration order.
    out.sort_by_key(|r| r.path.rank());
    Ok(out)
}

fn compile_route(r: &Route) -> CoreResult<CompiledRoute> {
    let path = RoutePath::parse(&r.path)?;
    let service = ServiceName::parse(&r.service_name)?;
    let function = FunctionName::parse(&r.function_name)?;
    let qualifier = Qualifier::parse(&r.qualifier)?;
    if let Some(m) = r.methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
        return Err(CoreError::invalid(format!("route method '{m}' is not one of {}", METHODS.join(", "))));
    }
    let rewrite = match &r.rewrite_config {
        Some(cfg) => Rewrite::compile(cfg).map_err(|e| CoreError::invalid(format!("route '{}': {e}", r.path)))?,
        None => Rewrite::default(),
    };
    Ok(CompiledRoute { path, service, function, qualifier, methods: r.methods.clone(), rewrite })
}

/// A custom domain ready to route requests: its owner and its compiled routes.
#[derive(Debug)]
pub struct DomainRoutes {
    /// The account that owns the domain: requests to it run this account's functions.
    pub account: String,
    /// The name as it was created.
    pub name: String,
    /// The stored document's ETag this was compiled from.
    etag: String,
    routes: Vec<CompiledRoute>,
}

/// Where a request to a custom domain goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub service: ServiceName,
    pub function: FunctionName,
    pub qualifier: Qualifier,
    /// The path and query the function sees (after the route's rewrite rules).
    pub uri: String,
}

/// Why a request to a custom domain goes nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMiss {
    /// No route's path matches (FC's `DomainRouteNotFound`).
    NoRoute,
    /// Routes match the path, but none takes the method; these do.
    MethodNotAllowed(Vec<String>),
}

impl DomainRoutes {
    fn compile(doc: &Document) -> CoreResult<Self> {
        let body: DomainBody = serde_json::from_value(doc.body.clone())
            .map_err(|e| CoreError::Internal(format!("stored custom domain unreadable: {e}")))?;
        let name = body.domain_name.clone().filter(|n| n.eq_ignore_ascii_case(&doc.key)).unwrap_or_else(|| doc.key.clone());
        Ok(DomainRoutes {
            account: doc.account_id.clone(),
            name,
            etag: doc.etag.clone(),
            routes: compile_routes(body.route_config.as_ref(), false)?,
        })
    }

    /// The route a request takes: the best-ranked route whose path matches and whose methods allow the
    /// request's (a route for another method is passed over for the next one), then its rewrite rules.
    /// `path` is the request path as sent (not percent-decoded), `query` its query string.
    pub fn route(&self, method: &str, path: &str, query: Option<&str>) -> Result<Routed, RouteMiss> {
        let mut allowed: Vec<String> = Vec::new();
        let mut path_matched = false;
        for r in self.routes.iter().filter(|r| r.path.matches(path)) {
            path_matched = true;
            if r.methods.is_empty() || r.methods.iter().any(|m| m.eq_ignore_ascii_case(method)) {
                return Ok(Routed {
                    service: r.service.clone(),
                    function: r.function.clone(),
                    qualifier: r.qualifier.clone(),
                    uri: r.rewrite.apply(path, query),
                });
            }
            for m in &r.methods {
                if !allowed.contains(m) {
                    allowed.push(m.clone());
                }
            }
        }
        Err(if path_matched { RouteMiss::MethodNotAllowed(allowed) } else { RouteMiss::NoRoute })
    }
}

/// The node-local cache of the host → domain lookup (see the module doc).
pub struct DomainCache {
    /// By stored name (lower-case, or `*.parent`): the domain, or `None` when there is none.
    lookups: ReadCache<String, Option<Arc<DomainRoutes>>>,
    /// Compiled domains by stored name, reused while their ETag is unchanged.
    compiled: Mutex<HashMap<String, Arc<DomainRoutes>>>,
}

const MAX_COMPILED: usize = 10_000;

impl DomainCache {
    pub fn new(ttl: Duration) -> Self {
        DomainCache { lookups: ReadCache::new(ttl, 100_000), compiled: Mutex::new(HashMap::new()) }
    }

    pub(crate) fn invalidate(&self, key: &str) {
        self.lookups.invalidate(&key.to_owned());
        self.compiled.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }

    pub(crate) fn clear(&self) {
        self.lookups.clear();
        self.compiled.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    fn compiled(&self, doc: &Document) -> CoreResult<Arc<DomainRoutes>> {
        let mut map = self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = map.get(&doc.key).filter(|c| c.etag == doc.etag && c.account == doc.account_id) {
            return Ok(c.clone());
        }
        let c = Arc::new(DomainRoutes::compile(doc)?);
        if map.len() >= MAX_COMPILED {
            map.clear();
        }
        map.insert(doc.key.clone(), c.clone());
        Ok(c)
    }
}

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
        let name = req.domain_name.clone().ok_or_else(|| CoreError::invalid("domainName is required"))?;
        let key = key_of(&name);
        check_domain_name(&key).map_err(|_| CoreError::invalid(format!("domain name '{name}' is not a valid host name")))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names() {
        for (name, ok) in [("example.com", true), ("a.b-c.example.com", true), ("*.example.com", true), ("localhost", false),
            ("-a.com", false), ("a..com", false), ("a_b.com", false), ("a.*.com", false), ("127.0.0.1", false),
            ("a.c", false), ("a.c0m", false)] {
            assert_eq!(check_domain_name(name).is_ok(), ok, "{name}");
        }
    }

    #[test]
    fn host_names() {
        assert_eq!(host_name("Api.Example.COM:8080").as_deref(), Some("api.example.com"));
        assert_eq!(host_name("api.example.com.").as_deref(), Some("api.example.com"));
        assert_eq!(host_name("api.example.com"), Some("api.example.com".into()));
        for h in ["127.0.0.1:9000", "[::1]:9000", "localhost", "*.example.com", "a.example.com:x", ""] {
            assert_eq!(host_name(h), None, "{h}");
        }
    }

    fn check(body: &str, ok: bool) {
        let parsed: CoreResult<DomainBody> = parse_body(body.as_bytes(), &DOMAIN_SHAPE);
        let r = parsed.and_then(|d| d.validate());
        assert_eq!(r.is_ok(), ok, "{body}: {r:?}");
    }

    #[test]
    fn domain_bodies() {
        check(r#"{"protocol":"HTTP","routeConfig":{"routes":[{"path":"/a/*","serviceName":"s","functionName":"f","methods":["GET"]}]}}"#, true);
        check(r#"{"protocol":"FTP"}"#, false);
        check(r#"{"protocol":"HTTPS"}"#, false);
        check(r#"{"protocol":"HTTPS","certConfig":{"certName":"c","certificate":"-----BEGIN CERTIFICATE-----x","privateKey":"-----BEGIN PRIVATE KEY-----y"}}"#, true);
        check(r#"{"routeConfig":{"routes":[{"path":"a","serviceName":"s","functionName":"f"}]}}"#, false);
        check(r#"{"routeConfig":{"routes":[{"path":"/a","serviceName":"9s","functionName":"f"}]}}"#, false);
        check(r#"{"routeConfig":{"routes":[{"path":"/a","serviceName":"s","functionName":"f","methods":["BREW"]}]}}"#, false);
        check(r#"{"tlsConfig":{"minVersion":"SSLv3"}}"#, false);
        check(r#"{"RouteConfig":{"Routes":[{"Path":"/","ServiceName":"s","FunctionName":"f","RewriteConfig":{"equalRules":[{"match":"","replacement":"/"}]}}]}}"#, false);
        // '*' only at the end of a path; regexes must compile and stay small; replacements must be URI-safe.
        check(r#"{"routeConfig":{"routes":[{"path":"/a/*/b","serviceName":"s","functionName":"f"}]}}"#, false);
        let rules = |kind: &str, m: &str, r: &str| {
            format!(r#"{{"routeConfig":{{"routes":[{{"path":"/*","serviceName":"s","functionName":"f","rewriteConfig":{{"{kind}":[{{"match":{},"replacement":{}}}]}}}}]}}}}"#,
                serde_json::to_string(m).unwrap(), serde_json::to_string(r).unwrap())
        };
        check(&rules("regexRules", "^/v1/(.*)", "/$1"), true);
        check(&rules("regexRules", "^/v1/(.*", "/$1"), false);
        check(&rules("regexRules", "(a{1000}){1000}", "/"), false);
        check(&rules("regexRules", &"a".repeat(MAX_PATTERN + 1), "/"), false);
        check(&rules("wildcardRules", "/api/*", "/$1"), true);
        check(&rules("equalRules", "/a", "/b c"), false);
        check(&rules("equalRules", "/a", "/b\r\nX: y"), false);
        check(&rules("equalRules", "/a", "/b#frag"), false);
    }

    fn route(path: &str, function: &str, methods: &[&str], rewrite: RewriteConfig) -> Route {
        Route {
            path: path.into(),
            service_name: "s".into(),
            function_name: function.into(),
            qualifier: String::new(),
            methods: methods.iter().map(|m| (*m).to_owned()).collect(),
            rewrite_config: Some(rewrite),
        }
    }

    fn domain(routes: Vec<Route>) -> DomainRoutes {
        let cfg = RouteConfig { routes };
        DomainRoutes { account: "1".into(), name: "a.example.com".into(), etag: "e".into(), routes: compile_routes(Some(&cfg), true).unwrap() }
    }

    fn rules(pairs: &[(&str, &str)]) -> Vec<Rule> {
        pairs.iter().map(|(m, r)| Rule { pattern: (*m).into(), replacement: (*r).into() }).collect()
    }

    /// (function, uri) a request reaches.
    fn goes(d: &DomainRoutes, method: &str, path: &str, query: Option<&str>) -> Result<(String, String), RouteMiss> {
        d.route(method, path, query).map(|r| (r.function.to_string(), r.uri))
    }

    #[test]
    fn exact_before_prefix_and_longest_prefix_first() {
        let d = domain(vec![
            route("/*", "root", &[], RewriteConfig::default()),
            route("/login/*", "login", &[], RewriteConfig::default()),
            route("/login/a/*", "deep", &[], RewriteConfig::default()),
            route("/login/a/x", "exact", &[], RewriteConfig::default()),
            route("/only", "only", &[], RewriteConfig::default()),
        ]);
        let f = |p: &str| goes(&d, "GET", p, None).unwrap().0;
        assert_eq!(f("/login/a/b"), "deep");
        assert_eq!(f("/login/a/x"), "exact");
        assert_eq!(f("/login/a/x/y"), "deep");
        assert_eq!(f("/login/b/c/d"), "login");
        assert_eq!(f("/login/"), "login");
        assert_eq!(f("/login"), "root", "/login/* covers paths under /login/ only");
        assert_eq!(f("/only"), "only");
        assert_eq!(f("/only/"), "root", "an exact path matches itself only");
        assert_eq!(f("/"), "root");
        let none = domain(vec![route("/a", "a", &[], RewriteConfig::default()), route("/b/*", "b", &[], RewriteConfig::default())]);
        assert_eq!(goes(&none, "GET", "/c", None), Err(RouteMiss::NoRoute));
        assert_eq!(goes(&none, "GET", "/b", None), Err(RouteMiss::NoRoute));
        assert_eq!(goes(&domain(vec![]), "GET", "/", None), Err(RouteMiss::NoRoute));
    }

    #[test]
    fn methods_filter_routes() {
        let d = domain(vec![
            route("/api/*", "reads", &["GET", "HEAD"], RewriteConfig::default()),
            route("/api/*", "writes", &["POST"], RewriteConfig::default()),
            route("/x", "x", &["DELETE"], RewriteConfig::default()),
        ]);
        assert_eq!(goes(&d, "GET", "/api/1", None).unwrap().0, "reads");
        assert_eq!(goes(&d, "get", "/api/1", None).unwrap().0, "reads");
        assert_eq!(goes(&d, "POST", "/api/1", None).unwrap().0, "writes");
        assert_eq!(goes(&d, "PUT", "/api/1", None), Err(RouteMiss::MethodNotAllowed(vec!["GET".into(), "HEAD".into(), "POST".into()])));
        assert_eq!(goes(&d, "GET", "/x", None), Err(RouteMiss::MethodNotAllowed(vec!["DELETE".into()])));
        // A route for another method gives way to the next one that matches.
        let d = domain(vec![route("/api/*", "api", &["GET"], RewriteConfig::default()), route("/*", "any", &[], RewriteConfig::default())]);
        assert_eq!(goes(&d, "POST", "/api/1", None).unwrap().0, "any");
    }

    #[test]
    fn qualifiers_are_kept() {
        let mut r = route("/*", "f", &[], RewriteConfig::default());
        r.qualifier = "prod".into();
        let d = domain(vec![r]);
        assert_eq!(d.route("GET", "/", None).unwrap().qualifier, Qualifier::Alias("prod".into()));
        let d = domain(vec![route("/*", "f", &[], RewriteConfig::default())]);
        assert_eq!(d.route("GET", "/", None).unwrap().qualifier, Qualifier::Latest);
    }

    fn rewrite(equal: &[(&str, &str)], wildcard: &[(&str, &str)], regex: &[(&str, &str)]) -> Rewrite {
        Rewrite::compile(&RewriteConfig { equal_rules: rules(equal), wildcard_rules: rules(wildcard), regex_rules: rules(regex) }).unwrap()
    }

    #[test]
    fn equal_rules() {
        let w = rewrite(&[("/old", "/new"), ("/serviceName.Qualifier", "/serviceA")], &[], &[]);
        assert_eq!(w.apply("/old", None), "/new");
        assert_eq!(w.apply("/test/old", None), "/test/old");
        assert_eq!(w.apply("/serviceName.Qualifier", None), "/serviceA");
        assert_eq!(w.apply("/old", Some("a=1")), "/new?a=1");
    }

    #[test]
    fn wildcard_rules_as_fc_documents_them() {
        let w = rewrite(&[], &[("/old", "/new")], &[]);
        assert_eq!(w.apply("/old", None), "/new");
        assert_eq!(w.apply("/test/old", None), "/new");
        assert_eq!(w.apply("/old/x", None), "/old/x", "a wildcard match runs to the end of the path");
        let w = rewrite(&[], &[("^/old", "/new")], &[]);
        assert_eq!(w.apply("/old", None), "/new");
        assert_eq!(w.apply("/test/old", None), "/test/old");
        let w = rewrite(&[], &[("/api/*", "/$1")], &[]);
        assert_eq!(w.apply("/api/getFunctionName", None), "/getFunctionName");
        assert_eq!(w.apply("/api/getFunctionName&Version=1", None), "/getFunctionName&Version=1");
        let w = rewrite(&[], &[("/css/*", "/public/static/css/$1")], &[]);
        assert_eq!(w.apply("/css/style.css", None), "/public/static/css/style.css");
        let w = rewrite(&[], &[("^/static/*/*.png", "/img/$2/$1.png")], &[]);
        assert_eq!(w.apply("/static/a/b.png", None), "/img/b/a.png");
        // Regex metacharacters in a wildcard are literal.
        let w = rewrite(&[], &[("^/a.b(c)", "/x")], &[]);
        assert_eq!(w.apply("/a.b(c)", None), "/x");
        assert_eq!(w.apply("/aXb(c)", None), "/aXb(c)");
    }

    #[test]
    fn regex_rules() {
        let w = rewrite(&[], &[], &[("^/js/(.*?)$", "/public/javascripts/$1"), ("^/v1/(?P<rest>.*)", "/v2/${rest}")]);
        assert_eq!(w.apply("/js/jquery.js", None), "/public/javascripts/jquery.js");
        assert_eq!(w.apply("/v1/users/7", Some("x=1")), "/v2/users/7?x=1");
        assert_eq!(w.apply("/other", None), "/other");
        // What a regex matches is rewritten, the rest stays.
        let w = rewrite(&[], &[], &[("/v1/", "/v2/")]);
        assert_eq!(w.apply("/api/v1/x", None), "/api/v2/x");
        // A replacement's query comes first; a missing leading '/' is added.
        let w = rewrite(&[], &[], &[("^/search/(.*)$", "find?q=$1")]);
        assert_eq!(w.apply("/search/cats", Some("page=2")), "/find?q=cats&page=2");
    }

    #[test]
    fn first_matching_rule_wins_in_fc_order() {
        let w = rewrite(&[("/a", "/equal")], &[("/a", "/wildcard"), ("/*", "/wildcard-any")], &[("^/(.*)$", "/regex/$1")]);
        assert_eq!(w.apply("/a", None), "/equal");
        assert_eq!(w.apply("/x/a", None), "/wildcard", "wildcards before regexes, in order");
        assert_eq!(w.apply("/b", None), "/wildcard-any");
        let w = rewrite(&[("/a", "/equal")], &[], &[("^/(.*)$", "/regex/$1")]);
        assert_eq!(w.apply("/b", None), "/regex/b");
        assert_eq!(w.apply("/a", None), "/equal", "only one rule applies");
    }

    #[test]
    fn routes_rewrite_the_path_they_match() {
        let d = domain(vec![
            route("/api/*", "api", &[], RewriteConfig { wildcard_rules: rules(&[("^/api/*", "/$1")]), ..Default::default() }),
            route("/*", "root", &[], RewriteConfig::default()),
        ]);
        assert_eq!(goes(&d, "GET", "/api/users", Some("id=1")).unwrap(), ("api".into(), "/users?id=1".into()));
        assert_eq!(goes(&d, "GET", "/users", None).unwrap(), ("root".into(), "/users".into()));
    }

    #[test]
    fn stored_configs_leave_out_what_no_longer_validates() {
        let cfg = RouteConfig {
            routes: vec![
                route("/bad/*", "f", &[], RewriteConfig { regex_rules: rules(&[("(", "/")]), ..Default::default() }),
                route("/*", "good", &[], RewriteConfig::default()),
            ],
        };
        assert!(compile_routes(Some(&cfg), true).is_err());
        let lenient = compile_routes(Some(&cfg), false).unwrap();
        assert_eq!(lenient.len(), 1);
        assert_eq!(lenient[0].function.to_string(), "good");
    }

    #[test]
    fn responses_keep_the_spelling_and_hide_the_key() {
        let doc = Document {
            account_id: "1".into(),
            kind: DOMAIN,
            key: "mixed.example.com".into(),
            body: json!({"domainName": "MiXeD.Example.com", "protocol": "HTTPS",
                         "certConfig": {"certName": "c", "certificate": "C", "privateKey": "secret"}}),
            etag: "e".into(),
            created_time: "t".into(),
            modified_time: "t".into(),
        };
        let out = domain_json(&doc);
        assert_eq!(out["domainName"], "MiXeD.Example.com");
        assert_eq!(out["certConfig"]["privateKey"], Value::Null);
        assert!(out["certConfig"].as_object().unwrap().contains_key("privateKey"));
        assert!(!out.to_string().contains("secret"));
        // Stored before the spelling was kept: the key.
        let old = Document { body: json!({"protocol": "HTTP"}), ..doc };
        assert_eq!(domain_json(&old)["domainName"], "mixed.example.com");
    }
}
