//! Fuzz target for custom domains (issue 11): the `Host` header, the domain body through its lenient shape,
//! validation, route and rewrite-rule compilation, and routing requests through the compiled rules. Inside
//! the crate because the shapes and compiled routes are private to `domains`. Harness: docs/fuzzing.md.

include!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/harness.rs"));

use super::routing::{DomainRoutes, compile_routes};
use super::*;

const DICT: &[&[u8]] = &[
    b"\"equalRules\":", b"\"wildcardRules\":", b"\"regexRules\":", b"\"match\":", b"\"replacement\":", b"\"path\":",
    b"\"routes\":", b"\"methods\":", b"\"rewriteConfig\":", b"\"^/", b"*", b"$1", b"${name}", b"(?P<name>", b"(.*)",
    b"\\\\", b"?", b"&", b"#", b"%2F", b"/", b"[", b"{1000}", b"\nGET /", b"\nPOST /", b".example.com",
];

#[test]
fn fuzz_domain() {
    harness::fuzz("domain", DICT, |input| {
        let parts = harness::lines(input, 3);
        let (host, body, requests) = (&parts[0], &parts[1], &parts[2]);
        if let Some(name) = host_name(host) {
            assert_eq!(host_name(&name).as_deref(), Some(name.as_str()), "host_name is not idempotent on {host:?}");
        }
        let Ok(parsed) = parse_body::<DomainBody>(body.as_bytes(), &DOMAIN_SHAPE) else { return };
        let strict_ok = parsed.validate().is_ok() && compile_routes(parsed.route_config.as_ref(), true).is_ok();
        let Ok(routes) = compile_routes(parsed.route_config.as_ref(), false) else { return };
        let domain = DomainRoutes {
            account: "1".into(),
            name: "a.example.com".into(),
            etag: String::new(),
            routes,
        };
        for line in requests.split('\n') {
            let (method, target) = line.split_once(' ').unwrap_or(("GET", line));
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (target, None),
            };
            if let Ok(routed) = domain.route(method, path, query)
                && strict_ok
                && uri_safe(path)
                && query.is_none_or(uri_safe)
            {
                // A validated config rewrites a request target into a request target.
                assert!(uri_safe(&routed.uri), "{line:?} rewritten to {:?}", routed.uri);
            }
        }
    });
}
