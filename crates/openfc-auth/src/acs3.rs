//! The ACS3-HMAC-SHA256 scheme (spec §3.2), default of the 2021-04-06 Tea SDK:
//! `Authorization: ACS3-HMAC-SHA256 Credential=<ak>,SignedHeaders=<a;b>,Signature=<hex>`.
//!
//! ```text
//! CanonicalRequest = VERB \n RawPath \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n HexSHA256(body)
//! StringToSign     = "ACS3-HMAC-SHA256\n" + hex(SHA256(CanonicalRequest))
//! Signature        = hex(HMAC-SHA256(secret, StringToSign))
//! ```

use sha2::{Digest, Sha256};

use crate::wire::{header, hmac_sha256, hmac_sha256_verify, parse_query, rfc3986_encode};
use crate::{AuthError, ParsedAuthorization, RequestParts, Scheme, SecretKey};

/// The algorithm token, first word of the Authorization header and first line of the StringToSign.
pub(crate) const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// Headers every ACS3 signature must cover (the Tea SDK always signs both): `x-acs-date`, or the clock-skew
/// check would test an unsigned value, and `host`.
pub(crate) const REQUIRED_SIGNED_HEADERS: [&str; 2] = ["host", "x-acs-date"];

/// Lower-cases, trims, sorts and deduplicates signed-header names (empty names dropped).
pub(crate) fn normalize_signed_headers<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let mut out: Vec<String> = names
        .into_iter()
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `enc(key)=enc(value)` pairs sorted by encoded key (stable, so repeated keys keep wire order), joined by `&`,
/// where `enc` is `quote(s, safe='~')`. The wire query is form-decoded first (`+` is a space); a bare key or
/// empty value renders as `key=`.
///
/// The Tea SDK does not encode keys, but every FC query key is made of unreserved characters (`limit`,
/// `nextToken`, `instanceIds.1`, `tag_k`), for which encoding changes nothing. Encoding them anyway keeps `=`
/// and `&` inside a key from colliding with the separators: `?limit%3D5%26prefix=` (one key) and
/// `?limit=5&prefix=` (two keys) must not share a signature.
fn canonical_query(raw_query: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = parse_query(raw_query)
        .into_iter()
        .map(|p| {
            (
                rfc3986_encode(&p.key),
                rfc3986_encode(p.value.as_deref().unwrap_or("")),
            )
        })
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Canonical request over already-normalized signed-header names; a missing header contributes `name:`.
fn canonical_request(req: &RequestParts, signed: &[String]) -> String {
    let uri = if req.raw_path.is_empty() {
        "/"
    } else {
        req.raw_path
    };
    let headers: String = signed
        .iter()
        .map(|name| format!("{name}:{}\n", header(req, name).unwrap_or("").trim()))
        .collect();
    format!(
        "{}\n{uri}\n{}\n{headers}\n{}\n{}",
        req.method.to_ascii_uppercase(),
        canonical_query(req.raw_query),
        signed.join(";"),
        req.body_sha256_hex
    )
}

fn string_to_sign(canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// Builds the ACS3 CanonicalRequest. `signed_headers` are normalized (lower-cased, sorted, deduplicated);
/// the URI is the raw path as sent, header values are trimmed, the payload hash is `req.body_sha256_hex`.
pub fn acs3_canonical_request(req: &RequestParts, signed_headers: &[&str]) -> String {
    canonical_request(
        req,
        &normalize_signed_headers(signed_headers.iter().copied()),
    )
}

/// `ACS3-HMAC-SHA256 Credential=<ak>,SignedHeaders=<a;b>,Signature=<hex>` for the request.
pub fn acs3_authorization(
    access_key_id: &str,
    secret: &SecretKey,
    req: &RequestParts,
    signed_headers: &[&str],
) -> String {
    let signed = normalize_signed_headers(signed_headers.iter().copied());
    let sts = string_to_sign(&canonical_request(req, &signed));
    let signature = hex::encode(hmac_sha256(secret.bytes(), sts.as_bytes()));
    format!(
        "{ALGORITHM} Credential={access_key_id},SignedHeaders={},Signature={signature}",
        signed.join(";")
    )
}

/// Parses the part after the algorithm token: comma-separated `Credential=`, `SignedHeaders=`, `Signature=`.
pub(crate) fn parse(rest: &str) -> Result<ParsedAuthorization, AuthError> {
    let malformed = |why: &str| AuthError::MalformedAuthorization(format!("{ALGORITHM}: {why}"));
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for item in rest
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| malformed("expected key=value items"))?;
        let slot = match key.trim() {
            k if k.eq_ignore_ascii_case("Credential") => &mut credential,
            k if k.eq_ignore_ascii_case("SignedHeaders") => &mut signed_headers,
            k if k.eq_ignore_ascii_case("Signature") => &mut signature,
            _ => continue,
        };
        slot.get_or_insert(value.trim());
    }
    let credential = credential
        .filter(|c| !c.is_empty())
        .ok_or_else(|| malformed("missing Credential="))?;
    let signed_headers = signed_headers.ok_or_else(|| malformed("missing SignedHeaders="))?;
    let signature = signature.ok_or_else(|| malformed("missing Signature="))?;
    let signature = hex::decode(signature).map_err(|_| malformed("Signature is not hex"))?;
    Ok(ParsedAuthorization {
        scheme: Scheme::Acs3,
        access_key_id: credential.to_string(),
        signature,
        signed_headers: normalize_signed_headers(signed_headers.split(';')),
    })
}

/// Constant-time check of `signature` (raw bytes) against the request's ACS3 signature.
pub(crate) fn verify(
    signature: &[u8],
    signed_headers: &[String],
    req: &RequestParts,
    secret: &SecretKey,
) -> bool {
    let sts = string_to_sign(&canonical_request(req, signed_headers));
    hmac_sha256_verify(secret.bytes(), sts.as_bytes(), signature)
}

#[cfg(test)]
mod tests {
    use super::canonical_query;

    fn check(raw: Option<&str>, expected: &str) {
        assert_eq!(canonical_query(raw), expected, "query {raw:?}");
    }

    #[test]
    fn canonical_query_form_decodes_then_rfc3986_encodes() {
        check(None, "");
        check(Some("qualifier=LATEST"), "qualifier=LATEST");
        check(
            Some("prefix=a+b%2Bc%2F~%2A%C3%A9&limit=10"),
            "limit=10&prefix=a%20b%2Bc%2F~%2A%C3%A9",
        );
        check(Some("z=&flag&a=1"), "a=1&flag=&z=");
        check(Some("k=2&k=1"), "k=2&k=1");
    }

    #[test]
    fn canonical_query_re_encodes_keys_so_encodings_cannot_collide() {
        // One key `limit=5&prefix` with an empty value is not the two keys `limit` and `prefix`.
        check(Some("limit%3D5%26prefix="), "limit%3D5%26prefix=");
        check(Some("limit=5&prefix="), "limit=5&prefix=");
        check(Some("a+b=1&a%20b=2"), "a%20b=1&a%20b=2");
        check(Some("%C3%A9=x&instanceIds.1=a"), "%C3%A9=x&instanceIds.1=a");
        // Keys sort by their encoded form.
        check(Some("b=1&a%2Fz=2&a=3"), "a=3&a%2Fz=2&b=1");
    }
}
