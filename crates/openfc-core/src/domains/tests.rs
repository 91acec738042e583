use super::*;
use super::routing::*;

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
