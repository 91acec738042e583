//! The FC signature scheme (spec §3.1): `Authorization: FC <AccessKeyId>:<base64(HMAC-SHA256)>`.
//!
//! ```text
//! StringToSign = VERB \n Content-MD5 \n Content-Type \n DATE \n CanonicalizedFCHeaders CanonicalizedResource
//! ```
//! The resource is the percent-decoded path for API calls; `/proxy/` (HTTP trigger) paths append `\n` and the
//! decoded query pairs, sorted, joined by `\n`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::wire::{
    QueryPair, header, hmac_sha256, hmac_sha256_verify, parse_query, percent_decode,
    prefixed_headers, push_unique, render_headers,
};
use crate::{RequestParts, SecretKey};

/// Query parameter holding the signature of a signed URL; it is not part of the signed resource.
const SIGNED_URL_SIGNATURE: &str = "x-fc-signature";
/// Query parameter whose value replaces DATE in a signed URL's StringToSign.
const SIGNED_URL_EXPIRES: &str = "x-fc-expires";

/// The DATE line: the `Date` header, else `x-fc-date` (browser/console clients), else empty.
pub(crate) fn request_date<'a>(req: &RequestParts<'a>) -> Option<&'a str> {
    header(req, "date").or_else(|| header(req, "x-fc-date"))
}

/// `VERB\nContent-MD5\nContent-Type\nDATE\n` followed by the canonicalized `x-fc-*` headers.
fn prefix(
    req: &RequestParts,
    content_md5: &str,
    content_type: &str,
    date: &str,
    fc_headers: &str,
) -> String {
    format!(
        "{}\n{content_md5}\n{content_type}\n{date}\n{fc_headers}",
        req.method.to_ascii_uppercase()
    )
}

fn canonical_fc_headers(req: &RequestParts) -> String {
    render_headers(&prefixed_headers(req, "x-fc-"))
}

/// A query pair as the SDKs sign it: `key=value`, or `key` for a bare key when `bare_as_key`
/// (Python/Go/Java), `key=` otherwise (what a `parse_qsl`-based verifier produces).
fn render_pair(pair: &QueryPair, bare_as_key: bool) -> String {
    match &pair.value {
        Some(v) => format!("{}={v}", pair.key),
        None if bare_as_key => pair.key.clone(),
        None => format!("{}=", pair.key),
    }
}

fn sorted_lines(pairs: &[QueryPair], bare_as_key: bool) -> String {
    let mut lines: Vec<String> = pairs.iter().map(|p| render_pair(p, bare_as_key)).collect();
    lines.sort();
    lines.join("\n")
}

fn is_proxy(decoded_path: &str) -> bool {
    decoded_path.contains("/proxy/")
}

/// The canonical resource as the SDKs build it (decoded path; sorted query for `/proxy/` paths).
fn standard_resource(req: &RequestParts) -> String {
    let path = percent_decode(req.raw_path);
    if is_proxy(&path) {
        format!(
            "{path}\n{}",
            sorted_lines(&parse_query(req.raw_query), true)
        )
    } else {
        path
    }
}

/// Builds the FC-scheme StringToSign of a request (spec §3.1), exactly as the fc2 SDKs do.
///
/// DATE is the `Date` header, falling back to `x-fc-date`; Content-MD5 / Content-Type are the raw header
/// values (empty if absent); `x-fc-*` headers are lower-cased, sorted and emitted untrimmed; the resource is
/// the percent-decoded path, plus the sorted decoded query for `/proxy/` paths.
pub fn fc_string_to_sign(req: &RequestParts) -> String {
    let md5 = header(req, "content-md5").unwrap_or("");
    let content_type = header(req, "content-type").unwrap_or("");
    let date = request_date(req).unwrap_or("");
    prefix(req, md5, content_type, date, &canonical_fc_headers(req)) + &standard_resource(req)
}

/// StringToSign of an FC signed URL (spec §3.1 "Signed URL variant"): DATE is the `x-fc-expires` query value
/// and the resource is the decoded path plus all decoded query pairs except `x-fc-signature`, sorted.
pub fn fc_signed_url_string_to_sign(req: &RequestParts) -> String {
    let md5 = header(req, "content-md5").unwrap_or("");
    let content_type = header(req, "content-type").unwrap_or("");
    let pairs: Vec<QueryPair> = parse_query(req.raw_query)
        .into_iter()
        .filter(|p| p.key != SIGNED_URL_SIGNATURE)
        .collect();
    let expires = pairs
        .iter()
        .find(|p| p.key == SIGNED_URL_EXPIRES)
        .and_then(|p| p.value.as_deref())
        .unwrap_or("");
    let resource = format!(
        "{}\n{}",
        percent_decode(req.raw_path),
        sorted_lines(&pairs, true)
    );
    prefix(req, md5, content_type, expires, &canonical_fc_headers(req)) + &resource
}

/// `FC <access_key_id>:<base64(HMAC-SHA256(secret, fc_string_to_sign(req)))>`.
pub fn fc_authorization(access_key_id: &str, secret: &SecretKey, req: &RequestParts) -> String {
    let signature = hmac_sha256(secret.bytes(), fc_string_to_sign(req).as_bytes());
    format!("FC {access_key_id}:{}", STANDARD.encode(signature))
}

/// Query renderings of the tolerated clients, most common first (deduplicated):
/// sorted with bare keys as `flag` (SDKs), wire order (gateway-fc-util), bare keys as `flag=`,
/// and the gateway's literal `unquote(query).split('&')` (keeps `+`, splits on decoded `&`).
fn query_variants(raw_query: Option<&str>) -> Vec<String> {
    let pairs = parse_query(raw_query);
    let mut out = Vec::new();
    for bare_as_key in [true, false] {
        push_unique(&mut out, sorted_lines(&pairs, bare_as_key));
        let wire: Vec<String> = pairs.iter().map(|p| render_pair(p, bare_as_key)).collect();
        push_unique(&mut out, wire.join("\n"));
    }
    if let Some(raw) = raw_query {
        push_unique(&mut out, percent_decode(raw).replace('&', "\n"));
    }
    out
}

/// Checks `signature` (raw HMAC bytes) against every tolerated client variant of the request's
/// StringToSign: decoded then raw path (fc2 Node signs `layerarn` paths encoded); for `/proxy/` paths the
/// query variants of [`query_variants`] and, for the gateway helper's header-case bug, empty
/// Content-MD5 / Content-Type. Each comparison is constant-time.
pub(crate) fn verify(signature: &[u8], req: &RequestParts, secret: &SecretKey) -> bool {
    let decoded = percent_decode(req.raw_path);
    let proxy = is_proxy(&decoded);
    let mut paths = vec![decoded];
    push_unique(&mut paths, req.raw_path.to_string());

    let mut resources = Vec::new();
    for path in &paths {
        if proxy {
            for query in query_variants(req.raw_query) {
                push_unique(&mut resources, format!("{path}\n{query}"));
            }
        } else {
            push_unique(&mut resources, path.clone());
        }
    }

    let md5 = header(req, "content-md5").unwrap_or("");
    let content_type = header(req, "content-type").unwrap_or("");
    let mut contents = vec![(md5, content_type)];
    if proxy {
        for variant in [(md5, ""), ("", content_type), ("", "")] {
            push_unique(&mut contents, variant);
        }
    }

    let date = request_date(req).unwrap_or("");
    let fc_headers = canonical_fc_headers(req);
    contents.iter().any(|&(md5, content_type)| {
        let prefix = prefix(req, md5, content_type, date, &fc_headers);
        resources.iter().any(|resource| {
            let string_to_sign = format!("{prefix}{resource}");
            hmac_sha256_verify(secret.bytes(), string_to_sign.as_bytes(), signature)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::query_variants;

    #[test]
    fn query_variants_cover_sdk_gateway_and_reference_verifier() {
        let got = query_variants(Some("x=2&x=1&a=b+c&flag"));
        assert_eq!(
            got,
            vec![
                "a=b c\nflag\nx=1\nx=2",  // SDKs: sorted, bare `flag`
                "x=2\nx=1\na=b c\nflag",  // gateway: wire order
                "a=b c\nflag=\nx=1\nx=2", // parse_qsl: `flag=`
                "x=2\nx=1\na=b c\nflag=",
                "x=2\nx=1\na=b+c\nflag", // gateway literal unquote keeps '+'
            ]
        );
        assert_eq!(query_variants(None), vec![String::new()]);
        assert_eq!(query_variants(Some("")), vec![String::new()]);
    }
}
