//! The ACS v1 ROA scheme (spec §3.3), sent by the Tea SDK with `signature_algorithm='v2'`:
//! `Authorization: acs <AccessKeyId>:<base64(HMAC-SHA1)>`.
//!
//! ```text
//! StringToSign = VERB \n Accept \n Content-MD5 \n Content-Type \n Date \n
//!              + sorted "x-acs-*" headers as name:value\n
//!              + path [+ "?" + query sorted by key, "k=v" or bare "k" for an empty value, joined by "&"]
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::wire::{
    header, hmac_sha1, hmac_sha1_verify, parse_query, prefixed_headers, render_headers,
};
use crate::{RequestParts, SecretKey};

/// `path?k=v&bare`: query form-decoded, sorted by key (stable), values not re-encoded.
fn resource(path: &str, raw_query: Option<&str>) -> String {
    let mut pairs = parse_query(raw_query);
    if pairs.is_empty() {
        return path.to_string();
    }
    pairs.sort_by(|a, b| a.key.cmp(&b.key));
    let query: Vec<String> = pairs
        .iter()
        .map(|p| match p.value.as_deref() {
            Some(v) if !v.is_empty() => format!("{}={v}", p.key),
            _ => p.key.clone(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// Builds the acs v1 StringToSign. The path is used as sent (the Tea SDK signs its already-encoded
/// pathname); header values are untrimmed; `x-acs-*` names are lower-cased and sorted.
pub fn acs1_string_to_sign(req: &RequestParts) -> String {
    let value = |name| header(req, name).unwrap_or("");
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}{}",
        req.method.to_ascii_uppercase(),
        value("accept"),
        value("content-md5"),
        value("content-type"),
        value("date"),
        render_headers(&prefixed_headers(req, "x-acs-")),
        resource(req.raw_path, req.raw_query)
    )
}

/// `acs <access_key_id>:<base64(HMAC-SHA1(secret, acs1_string_to_sign(req)))>`.
pub fn acs1_authorization(access_key_id: &str, secret: &SecretKey, req: &RequestParts) -> String {
    let signature = hmac_sha1(secret.bytes(), acs1_string_to_sign(req).as_bytes());
    format!("acs {access_key_id}:{}", STANDARD.encode(signature))
}

/// Constant-time check of `signature` (raw bytes) against the request's acs v1 signature.
pub(crate) fn verify(signature: &[u8], req: &RequestParts, secret: &SecretKey) -> bool {
    hmac_sha1_verify(
        secret.bytes(),
        acs1_string_to_sign(req).as_bytes(),
        signature,
    )
}

#[cfg(test)]
mod tests {
    use super::resource;

    #[test]
    fn resource_sorts_by_key_and_renders_empty_values_bare() {
        let check = |raw: Option<&str>, expected: &str| {
            assert_eq!(resource("/p", raw), expected, "{raw:?}")
        };
        check(None, "/p");
        check(Some(""), "/p");
        check(Some("qualifier=LATEST"), "/p?qualifier=LATEST");
        check(Some("b=2&a=x+y&e=&flag"), "/p?a=x y&b=2&e&flag");
    }
}
