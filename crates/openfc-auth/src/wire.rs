//! Wire-level helpers shared by the signature schemes: case-insensitive header lookup, query-string
//! parsing, percent coding and HMAC computation/verification.

use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha1::Sha1;
use sha2::Sha256;

use crate::RequestParts;

/// RFC 3986 unreserved characters stay literal; everything else is `%XX` (Python `quote(v, safe='~')`).
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// First value of the header `name` (case-insensitive), if present.
pub(crate) fn header<'a>(req: &RequestParts<'a>, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, v)| v)
}

/// Headers whose lower-cased name starts with `prefix`: `(lower-cased name, first value)`, sorted by name.
pub(crate) fn prefixed_headers<'a>(req: &RequestParts<'a>, prefix: &str) -> Vec<(String, &'a str)> {
    let mut out: Vec<(String, &'a str)> = req
        .headers
        .iter()
        .map(|&(n, v)| (n.to_ascii_lowercase(), v))
        .filter(|(n, _)| n.starts_with(prefix))
        .collect();
    // Stable sort keeps wire order among repeats; dedup_by keeps the first of each run.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|later, earlier| later.0 == earlier.0);
    out
}

/// Renders `name:value\n` for each pair (the canonical-header format of the FC and acs v1 schemes).
pub(crate) fn render_headers(headers: &[(String, &str)]) -> String {
    headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect()
}

/// One `key[=value]` piece of a query string, form-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryPair {
    pub key: String,
    /// `None` for a bare key on the wire (`?flag`), `Some("")` for `?flag=`.
    pub value: Option<String>,
}

/// Splits a wire query on `&` (empty pieces skipped, like Python's `parse_qsl`) and form-decodes
/// keys and values (`+` is a space, then `%XX`), preserving wire order.
pub(crate) fn parse_query(raw: Option<&str>) -> Vec<QueryPair> {
    raw.unwrap_or("")
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match piece.split_once('=') {
            Some((k, v)) => QueryPair {
                key: form_decode(k),
                value: Some(form_decode(v)),
            },
            None => QueryPair {
                key: form_decode(piece),
                value: None,
            },
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding: `+` -> space, then percent-decoding (lossy UTF-8).
pub(crate) fn form_decode(s: &str) -> String {
    percent_decode(&s.replace('+', " "))
}

/// Plain percent-decoding (Python `unquote`): `+` is kept, invalid UTF-8 becomes U+FFFD.
pub(crate) fn percent_decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// RFC 3986 encoding of a value (Python `quote(v, safe='~')`, upper-case hex).
pub(crate) fn rfc3986_encode(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

fn keyed<M: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> M {
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg);
    mac
}

pub(crate) fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    keyed::<Hmac<Sha256>>(key, msg)
        .finalize()
        .into_bytes()
        .to_vec()
}

/// Constant-time check of `tag` against HMAC-SHA256(key, msg); a tag of the wrong length fails.
pub(crate) fn hmac_sha256_verify(key: &[u8], msg: &[u8], tag: &[u8]) -> bool {
    keyed::<Hmac<Sha256>>(key, msg).verify_slice(tag).is_ok()
}

pub(crate) fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    keyed::<Hmac<Sha1>>(key, msg)
        .finalize()
        .into_bytes()
        .to_vec()
}

/// Constant-time check of `tag` against HMAC-SHA1(key, msg); a tag of the wrong length fails.
pub(crate) fn hmac_sha1_verify(key: &[u8], msg: &[u8], tag: &[u8]) -> bool {
    keyed::<Hmac<Sha1>>(key, msg).verify_slice(tag).is_ok()
}

/// Pushes `item` unless an equal element is already present (candidate lists stay tiny).
pub(crate) fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(key: &str, value: Option<&str>) -> QueryPair {
        QueryPair {
            key: key.into(),
            value: value.map(Into::into),
        }
    }

    fn check_query(raw: Option<&str>, expected: &[QueryPair]) {
        assert_eq!(parse_query(raw), expected, "query {raw:?}");
    }

    #[test]
    fn query_parsing_keeps_wire_order_and_distinguishes_bare_keys() {
        check_query(None, &[]);
        check_query(Some(""), &[]);
        check_query(Some("&&"), &[]);
        check_query(
            Some("x=2&x=1&a=hello%20world&empty=&flag"),
            &[
                pair("x", Some("2")),
                pair("x", Some("1")),
                pair("a", Some("hello world")),
                pair("empty", Some("")),
                pair("flag", None),
            ],
        );
        check_query(
            Some("p=a+b%2Bc&k%20x=v=w"),
            &[pair("p", Some("a b+c")), pair("k x", Some("v=w"))],
        );
    }

    #[test]
    fn rfc3986_encoding_matches_python_quote() {
        assert_eq!(rfc3986_encode("a b+c/~*é-._"), "a%20b%2Bc%2F~%2A%C3%A9-._");
        assert_eq!(percent_decode("a+b%2F%zz"), "a+b/%zz");
    }

    #[test]
    fn prefixed_headers_lowercase_sort_and_keep_first_repeat() {
        let headers = [
            ("X-Fc-B", "2"),
            ("x-fc-a", "1"),
            ("x-fc-b", "3"),
            ("Host", "h"),
        ];
        let req = RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: None,
            headers: &headers,
            body_sha256_hex: "",
        };
        let got = prefixed_headers(&req, "x-fc-");
        assert_eq!(
            got,
            vec![("x-fc-a".to_string(), "1"), ("x-fc-b".to_string(), "2")]
        );
        assert_eq!(header(&req, "HOST"), Some("h"));
        assert_eq!(header(&req, "x-fc-b"), Some("2"));
    }
}
