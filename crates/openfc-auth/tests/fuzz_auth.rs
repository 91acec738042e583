//! Fuzz targets for what openfc-auth reads from the network: the `Authorization` header, the three
//! canonicalisers and verifiers over whole requests, and the URL tokens. Harness and budget: docs/fuzzing.md.

include!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/harness.rs"));

use harness::{fuzz, lines};
use openfc_auth::*;
use time::OffsetDateTime;
use time::macros::datetime;

const T: OffsetDateTime = datetime!(2006-01-02 15:04:05 UTC);
const DATE: &str = "Mon, 02 Jan 2006 15:04:05 GMT";
const ACS_DATE: &str = "2006-01-02T15:04:05Z";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const DICT: &[&[u8]] = &[
    b"FC ", b"acs ", b"ACS3-HMAC-SHA256 ", b"Credential=", b",SignedHeaders=", b",Signature=", b"x-fc-", b"x-acs-",
    b"date: ", b"x-acs-date: ", b"content-md5: ", b"content-type: ", b"host: ", b"/proxy/", b"%20", b"%2F", b"%",
    b"?", b"&", b"=", b"+", b"\nAuthorization: ", b"x-fc-expires=", b"x-fc-signature=", b"transfer-encoding: ",
    b"content-length: 5", b"x-acs-content-sha256: ", b"x-acs-signature-nonce: ",
];

/// A request written as text: `METHOD path?query`, then `name: value` lines.
struct Req {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
}

impl Req {
    fn read(input: &[u8]) -> Req {
        let text = String::from_utf8_lossy(input);
        let mut it = text.split('\n');
        let first = it.next().unwrap_or("");
        let (method, target) = first.split_once(' ').unwrap_or((first, "/"));
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target.to_owned(), None),
        };
        let headers = it
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_owned(), v.strip_prefix(' ').unwrap_or(v).to_owned()))
            .collect();
        Req { method: method.to_owned(), path, query, headers }
    }

    fn view<R>(&self, body_sha256: &str, f: impl FnOnce(&RequestParts) -> R) -> R {
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        f(&RequestParts {
            method: &self.method,
            raw_path: &self.path,
            raw_query: self.query.as_deref(),
            headers: &headers,
            body_sha256_hex: body_sha256,
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn set(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
    }
}

#[test]
fn fuzz_auth_header() {
    fuzz("auth_header", DICT, |input| {
        let value = String::from_utf8_lossy(input);
        if let Ok(parsed) = parse_authorization(&value) {
            assert!(!parsed.access_key_id.is_empty(), "{value:?}");
            // A parsed header is verified against a minimal request without panicking.
            let req = Req::read(b"GET /2021-04-06/services\ndate: Mon, 02 Jan 2006 15:04:05 GMT");
            let secret = SecretKey::new("s".into());
            let _ = req.view(EMPTY_SHA256, |p| verify(&parsed, p, &secret, T));
        }
    });
}

/// Any request: the canonical strings are computed and its Authorization (if any) is verified and
/// verified from the head, without panicking.
#[test]
fn fuzz_auth_request() {
    fuzz("auth_request", DICT, |input| {
        let req = Req::read(input);
        req.view(EMPTY_SHA256, |p| {
            let _ = fc_string_to_sign(p);
            let _ = fc_signed_url_string_to_sign(p);
            let names: Vec<&str> = p.headers.iter().map(|&(n, _)| n).collect();
            let _ = acs3_canonical_request(p, &names);
            let _ = acs1_string_to_sign(p);
        });
        let secret = SecretKey::new("test-secret-key".into());
        if let Some(auth) = req.header("authorization").and_then(|v| parse_authorization(v).ok()) {
            let _ = req.view(EMPTY_SHA256, |p| verify(&auth, p, &secret, T));
            let headers: Vec<(&str, &str)> = req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let head =
                RequestHead { method: &req.method, raw_path: &req.path, raw_query: req.query.as_deref(), headers: &headers };
            if let Ok(verified) = verify_head(&auth, &head, &secret, T) {
                let _ = verified.body.check(input);
            }
        }
    });
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Fc,
    Acs3,
    AcsV1,
}

/// The fuzzed request made signable by `kind`: a plain method, header names of token characters, the
/// scheme's date at `T`, ACS3's host and payload hash. Everything else (path, query, values) stays fuzzed.
fn signable(input: &[u8], kind: Kind) -> Req {
    let mut req = Req::read(input);
    req.method = req.method.chars().filter(char::is_ascii_alphabetic).collect::<String>().to_ascii_uppercase();
    if req.method.is_empty() {
        req.method = "GET".into();
    }
    req.headers.retain(|(n, _)| {
        !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !n.eq_ignore_ascii_case("authorization")
            && !n.eq_ignore_ascii_case("x-fc-date")
    });
    req.headers.iter_mut().for_each(|(_, v)| *v = v.replace(['\r', '\n'], ""));
    req.set("content-type", "application/json");
    match kind {
        Kind::Fc | Kind::AcsV1 => req.set("date", DATE),
        Kind::Acs3 => {
            req.set("x-acs-date", ACS_DATE);
            if req.header("host").is_none_or(|h| h.trim().is_empty()) {
                req.set("host", "127.0.0.1:9000");
            }
            req.set("x-acs-content-sha256", EMPTY_SHA256);
        }
    }
    req
}

fn sign(kind: Kind, req: &Req, secret: &SecretKey) -> String {
    req.view(EMPTY_SHA256, |p| match kind {
        Kind::Fc => fc_authorization("ak", secret, p),
        Kind::Acs3 => {
            let names: Vec<&str> = p.headers.iter().map(|&(n, _)| n).collect();
            acs3_authorization("ak", secret, p, &names)
        }
        Kind::AcsV1 => acs1_authorization("ak", secret, p),
    })
}

fn check(_kind: Kind, req: &Req, auth: &str, secret: &SecretKey) -> Result<(), AuthError> {
    let parsed = parse_authorization(auth)?;
    req.view(EMPTY_SHA256, |p| verify(&parsed, p, secret, T))
}

/// Replaces the ASCII letter or digit at byte `at` of `s` (not inside a `%XX` escape) with another one.
fn flip_alnum(s: &str, seed: usize) -> Option<String> {
    let bytes = s.as_bytes();
    let candidates: Vec<usize> = (0..bytes.len())
        .filter(|&i| bytes[i].is_ascii_alphanumeric())
        .filter(|&i| !(i >= 1 && bytes[i - 1] == b'%') && !(i >= 2 && bytes[i - 2] == b'%'))
        .collect();
    let &at = candidates.get(seed % candidates.len().max(1))?;
    let mut out = bytes.to_vec();
    out[at] = if out[at] == b'z' { b'y' } else if out[at] == b'9' { b'8' } else { out[at] + 1 };
    // Letters turned into the next byte stay letters/digits except after 'Z' and '9', handled above.
    if !out[at].is_ascii_alphanumeric() {
        out[at] = b'q';
    }
    String::from_utf8(out).ok().filter(|m| m != s)
}

/// A request signed by each scheme verifies; changing one signed byte (the signature, the path, a signed
/// header's value, the secret) makes it fail.
#[test]
fn fuzz_auth_roundtrip() {
    fuzz("auth_request", DICT, |input| {
        let secret = SecretKey::new("test-secret-key".into());
        let seed = input.iter().fold(0usize, |h, &b| h.wrapping_mul(31).wrapping_add(b as usize));
        for kind in [Kind::Fc, Kind::Acs3, Kind::AcsV1] {
            let req = signable(input, kind);
            let auth = sign(kind, &req, &secret);
            let ok = check(kind, &req, &auth, &secret);
            assert_eq!(ok, Ok(()), "{kind:?}: a correctly signed request fails: {auth}");

            // One byte of the decoded signature.
            let split = match kind {
                Kind::Acs3 => auth.rfind("Signature=").unwrap() + "Signature".len(),
                _ => auth.rfind(':').unwrap(),
            };
            let (head, sig) = (&auth[..split], &auth[split + 1..]);
            let mut raw = match kind {
                Kind::Acs3 => hex::decode(sig).unwrap(),
                _ => {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD.decode(sig).unwrap()
                }
            };
            let i = seed % raw.len();
            raw[i] ^= 1 << (seed % 8);
            let sep = &auth[head.len()..head.len() + 1];
            let tampered = match kind {
                Kind::Acs3 => format!("{head}{sep}{}", hex::encode(&raw)),
                _ => {
                    use base64::Engine as _;
                    format!("{head}{sep}{}", base64::engine::general_purpose::STANDARD.encode(&raw))
                }
            };
            assert!(check(kind, &req, &tampered, &secret).is_err(), "{kind:?}: tampered signature accepted");

            // One letter or digit of the path.
            if let Some(path) = flip_alnum(&req.path, seed) {
                let mut other = Req { path, ..Req::read(b"") };
                other.method = req.method.clone();
                other.query = req.query.clone();
                other.headers = req.headers.clone();
                assert!(
                    check(kind, &other, &auth, &secret).is_err(),
                    "{kind:?}: path {:?} accepted for {:?}",
                    other.path,
                    req.path
                );
            }

            // One letter of a signed header's value (content-type is signed by all three).
            let mut other = Req::read(b"");
            other.method = req.method.clone();
            other.path = req.path.clone();
            other.query = req.query.clone();
            other.headers = req.headers.clone();
            other.set("content-type", "application/jsoo");
            assert!(check(kind, &other, &auth, &secret).is_err(), "{kind:?}: content-type change accepted");

            // One byte of the secret.
            let wrong = SecretKey::new("test-secret-kez".into());
            assert!(check(kind, &req, &auth, &wrong).is_err(), "{kind:?}: wrong secret accepted");
        }
    });
}

#[test]
fn fuzz_url_token() {
    fuzz("url_token", &[b"\n", b"=", b"+", b"/", b"-", b"_"], |input| {
        let parts = lines(input, 3);
        let (key, message, token) = (parts[0].as_bytes(), parts[1].as_str(), parts[2].as_str());
        let _ = verify_token(key, message, token);
        let good = sign_token(key, message);
        assert!(verify_token(key, message, &good));
        // Any single-character change of a valid token fails.
        let seed = input.len();
        let mut chars: Vec<char> = good.chars().collect();
        let i = seed % chars.len();
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let bad: String = chars.into_iter().collect();
        assert!(!verify_token(key, message, &bad), "{good} vs {bad}");
        assert!(!verify_token(key, &format!("{message}x"), &good));
        if token != good {
            assert!(!verify_token(key, message, token), "a token other than the signed one verifies: {token:?}");
        }
    });
}
