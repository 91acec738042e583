//! Routing of requests to a custom domain: route paths, rewrite rules, the compiled routes of a domain,
//! and the node-local cache of the host lookup (see the parent module's doc).

use super::*;

// ---- routing ----

/// Where a route's `path` matches: itself only, or everything under a prefix (`/login/*` → `/login/...`,
/// `/*` → every path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RoutePath {
    Exact(String),
    Prefix(String),
}

const ROUTE_PATH: &str = "RouteConfig.Routes.Path";

impl RoutePath {
    pub(super) fn parse(path: &str) -> CoreResult<Self> {
        if !path.starts_with('/') {
            return Err(CoreError::invalid_value(ROUTE_PATH, "a path starting with '/'", path));
        }
        if path.len() > MAX_PATTERN {
            return Err(CoreError::invalid_value(
                ROUTE_PATH,
                format_args!("at most {MAX_PATTERN} characters"),
                format_args!("{} characters", path.len()),
            ));
        }
        match path.strip_suffix('*') {
            Some(prefix) if !prefix.contains('*') => Ok(RoutePath::Prefix(prefix.to_owned())),
            None if !path.contains('*') => Ok(RoutePath::Exact(path.to_owned())),
            _ => Err(CoreError::invalid_value(ROUTE_PATH, "a path with '*' only at its end", path)),
        }
    }

    pub(super) fn matches(&self, path: &str) -> bool {
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
pub(super) struct Rewrite {
    equal: Vec<(String, String)>,
    wildcard: Vec<(Regex, String)>,
    regex: Vec<(Regex, String)>,
}

pub(super) fn build_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE)
        .dfa_size_limit(REGEX_DFA_SIZE)
        .build()
        .map_err(|e| e.to_string())
}

/// The regex a wildcard rule stands for.
pub(super) fn wildcard_regex(pattern: &str) -> String {
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
    pub(super) fn compile(cfg: &RewriteConfig) -> Result<Self, String> {
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
    pub(super) fn apply(&self, path: &str, query: Option<&str>) -> String {
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
pub(super) struct CompiledRoute {
    path: RoutePath,
    service: ServiceName,
    pub(super) function: FunctionName,
    qualifier: Qualifier,
    /// Upper-case; empty: every method.
    methods: Vec<String>,
    rewrite: Rewrite,
}

/// Compiles a domain's routes, ordered for matching. `strict` (writes) refuses the first invalid route or
/// rule; otherwise (a stored config, possibly from before a rule existed) invalid ones are left out.
pub(super) fn compile_routes(cfg: Option<&RouteConfig>, strict: bool) -> CoreResult<Vec<CompiledRoute>> {
    let routes = cfg.map_or(&[][..], |c| c.routes.as_slice());
    if strict && routes.len() > MAX_ROUTES {
        return Err(CoreError::invalid_value(
            "RouteConfig.Routes",
            format_args!("at most {MAX_ROUTES} routes"),
            format_args!("{} routes", routes.len()),
        ));
    }
    let mut out = Vec::with_capacity(routes.len());
    let mut rules = 0;
    for r in routes.iter().take(MAX_ROUTES) {
        match compile_route(r) {
            Ok(c) if rules + c.rewrite.len() <= MAX_RULES => {
                rules += c.rewrite.len();
                out.push(c);
            }
            Ok(c) if strict => {
                return Err(CoreError::invalid_value(
                    "RouteConfig.Routes.RewriteConfig",
                    format_args!("at most {MAX_RULES} rewrite rules per domain"),
                    format_args!("{} rules", rules + c.rewrite.len()),
                ));
            }
            Err(e) if strict => return Err(e),
            Ok(_) | Err(_) => tracing::warn!(path = %r.path, "stored custom-domain route left out: invalid or over the limits"),
        }
    }
    // Stable: equal ranks keep their configuration order.
    out.sort_by_key(|r| r.path.rank());
    Ok(out)
}

pub(super) fn compile_route(r: &Route) -> CoreResult<CompiledRoute> {
    let path = RoutePath::parse(&r.path)?;
    let service = ServiceName::parse(&r.service_name)?;
    let function = FunctionName::parse(&r.function_name)?;
    let qualifier = Qualifier::parse(&r.qualifier)?;
    if let Some(m) = r.methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
        return Err(CoreError::invalid_value("RouteConfig.Routes.Methods", METHODS.join(" | "), m));
    }
    let rewrite = match &r.rewrite_config {
        Some(cfg) => Rewrite::compile(cfg).map_err(|e| {
            let path = &r.path;
            let field = "RouteConfig.Routes.RewriteConfig";
            CoreError::invalid(format!("{field} of route '{path}' is set to an invalid value: {e}"))
        })?,
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
    pub(super) etag: String,
    pub(super) routes: Vec<CompiledRoute>,
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
    pub(super) fn compile(doc: &Document) -> CoreResult<Self> {
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
    pub(super) lookups: ReadCache<String, Option<Arc<DomainRoutes>>>,
    /// Compiled domains by stored name, reused while their ETag is unchanged.
    compiled: Mutex<HashMap<String, Arc<DomainRoutes>>>,
}

pub(super) const MAX_COMPILED: usize = 10_000;

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

    pub(super) fn compiled(&self, doc: &Document) -> CoreResult<Arc<DomainRoutes>> {
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
