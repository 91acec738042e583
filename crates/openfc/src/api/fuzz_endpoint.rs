//! Fuzz target for the endpoint parser (issue 11): `METHOD path?query` → `Query::parse` and `parse`, then
//! the endpoint's RAM action and resource ARN. A child of `endpoint` (the binary crate has no library for an
//! integration test to link). Harness and budget: docs/fuzzing.md.

include!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/harness.rs"));

use super::*;

const DICT: &[&[u8]] = &[
    b"/2016-08-15/", b"/2021-04-06/", b"services/", b"functions/", b"/invocations", b"/code", b"/triggers/", b"/aliases/",
    b"/versions/", b"custom-domains/", b"layers/", b"layerarn/", b"/provision-config", b"/on-demand-config",
    b"/async-invoke-config", b"/stateful-async-invocations/", b"/bindings/", b"event-sources/", b".LATEST", b".1",
    b".prod", b"?qualifier=", b"&", b"=", b"%2F", b"%2E", b"%00", b"%ff", b"+", b"limit.1=", b"tag_",
];

#[test]
fn fuzz_endpoint() {
    harness::fuzz("endpoint", DICT, |input| {
        let line = String::from_utf8_lossy(input);
        let (method, target) = line.split_once(' ').unwrap_or(("GET", &line));
        let (path, raw_query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let query = Query::parse(raw_query);
        let _ = (query.list("limit"), query.tag_filters(), query.get("qualifier"));
        if let Ok((_, endpoint)) = parse(method, path, &query) {
            assert!(!endpoint.action().is_empty());
            let arn = endpoint.resource("cn-hangzhou", "123");
            if !matches!(endpoint, Endpoint::GetLayerVersionByArn { .. }) {
                assert!(arn.starts_with("acs:fc:cn-hangzhou:123:"), "{line:?}: {arn}");
            }
        }
        // Qualifiers round-trip: a `svc.q` segment read back from its rendering names the same service and
        // qualifier, with or without `?qualifier=`.
        for seg in path.split('/') {
            let seg = percent_decode_str(seg).decode_utf8_lossy();
            if let Ok((service, qualifier)) = service_segment(&seg, &query) {
                let rendered = qualifier.to_string();
                let again = Qualifier::parse(&rendered).expect("a qualifier's rendering parses");
                assert_eq!(again, qualifier, "{line:?}");
                let (s2, q2) = service_segment(&format!("{service}.{rendered}"), &Query::parse(None))
                    .expect("a rendered service.qualifier parses");
                assert_eq!((s2, q2), (service, qualifier), "{line:?}");
            }
        }
    });
}
