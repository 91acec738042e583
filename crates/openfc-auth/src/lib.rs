//! Request authentication for openfc: parsing and verifying the three signature schemes that Alibaba Cloud
//! Function Compute 2.0 clients send (spec §3) — `FC ak:sig` (fc2 SDKs, `fun`), `ACS3-HMAC-SHA256` (the
//! 2021-04-06 Tea SDK) and `acs ak:sig` (Tea with `signature_algorithm='v2'`) — together with the matching
//! client-side signers (for tests and benchmarks) and HMAC tokens for openfc's own signed URLs. It is a
//! pure library: no HTTP framework, no async, no I/O. The caller looks up the [`SecretKey`] for
//! [`ParsedAuthorization::access_key_id`] and either calls [`verify`] with the whole request
//! ([`RequestParts`], body hash included), or — a server that must not read an unauthenticated body —
//! [`verify_head`] with the [`RequestHead`] alone, then checks the body against the signed hash header with
//! the returned [`BodyCheck`] as it reads it. [`ReplayCache`] refuses signatures seen before.

#![forbid(unsafe_code)]

mod acs1;
mod acs3;
mod body;
mod clock;
mod fc;
mod replay;
mod secret;
mod token;
mod wire;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub use acs1::{acs1_authorization, acs1_string_to_sign};
pub use acs3::{acs3_authorization, acs3_canonical_request};
pub use body::{BodyCheck, BodyHasher};
pub use fc::{fc_authorization, fc_signed_url_string_to_sign, fc_string_to_sign};
pub use replay::{ReplayCache, ReplayClaim, ReplayKey};
pub use secret::SecretKey;
pub use token::{sign_token, verify_token};

/// A request as seen on the wire, independent of any HTTP framework.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// HTTP method, e.g. `"GET"`.
    pub method: &'a str,
    /// Path exactly as received, still percent-encoded, without the query.
    pub raw_path: &'a str,
    /// Query string as received (without `?`); may contain `+` and `%XX`.
    pub raw_query: Option<&'a str>,
    /// Header names in any case, values as received; a name may repeat (the first value wins).
    pub headers: &'a [(&'a str, &'a str)],
    /// Lower-case hex SHA-256 of the full request body (computed by the caller).
    pub body_sha256_hex: &'a str,
}

/// A request without its body: what [`verify_head`] needs.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// HTTP method, e.g. `"GET"`.
    pub method: &'a str,
    /// Path exactly as received, still percent-encoded, without the query.
    pub raw_path: &'a str,
    /// Query string as received (without `?`).
    pub raw_query: Option<&'a str>,
    /// Header names in any case, values as received; a name may repeat (the first value wins).
    pub headers: &'a [(&'a str, &'a str)],
}

impl<'a> RequestHead<'a> {
    /// The head with a body hash: the full request as [`verify`] sees it.
    pub fn with_body_sha256(&self, body_sha256_hex: &'a str) -> RequestParts<'a> {
        RequestParts {
            method: self.method,
            raw_path: self.raw_path,
            raw_query: self.raw_query,
            headers: self.headers,
            body_sha256_hex,
        }
    }
}

/// The signature scheme named by an `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `FC <ak>:<base64 HMAC-SHA256>` (spec §3.1).
    Fc,
    /// `ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=<hex>` (spec §3.2).
    Acs3,
    /// `acs <ak>:<base64 HMAC-SHA1>` (spec §3.3).
    AcsV1,
}

/// A syntactically valid `Authorization` header; pass it to [`verify`] once the secret is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    pub scheme: Scheme,
    pub access_key_id: String,
    /// Raw signature bytes (decoded from base64 or hex).
    pub(crate) signature: Vec<u8>,
    /// ACS3 only: lower-cased, sorted signed-header names.
    pub(crate) signed_headers: Vec<String>,
}

/// Why a request failed authentication.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// A header the scheme requires is absent (payload: the header name).
    #[error("required header '{0}' is missing")]
    MissingRequiredHeader(String),
    /// The `Authorization` header cannot be parsed (payload: the reason).
    #[error("malformed Authorization header: {0}")]
    MalformedAuthorization(String),
    /// The request time is unparsable or more than 15 minutes away from the server time.
    #[error("{0}")]
    RequestTimeTooSkewed(String),
    /// ACS3: `x-acs-content-sha256` differs from the SHA-256 of the body.
    #[error("the x-acs-content-sha256 header does not match the SHA-256 of the request body")]
    ContentSha256Mismatch,
    /// FC / acs v1: the signed `Content-MD5` is not the MD5 of the body.
    #[error("the Content-MD5 header does not match the MD5 of the request body")]
    ContentMd5Mismatch,
    /// ACS3: a header the signature must cover (`host`, `x-acs-date`) is not in `SignedHeaders`
    /// (payload: the header name).
    #[error("the signature must cover the '{0}' header: add it to SignedHeaders")]
    RequiredHeaderNotSigned(String),
    /// The signature of a mutating request was already used (see [`ReplayCache`]).
    #[error(
        "this request was already received: its signature was used before (replayed request); \
         sign every request anew"
    )]
    Replayed,
    /// No tolerated variant of the StringToSign matches the signature.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your access key and signing method"
    )]
    SignatureNotMatch,
}

/// Parses the Authorization header value: `FC ak:sig`, `ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=a;b,Signature=hex`
/// or `acs ak:sig`. The scheme token is matched case-insensitively.
pub fn parse_authorization(value: &str) -> Result<ParsedAuthorization, AuthError> {
    let value = value.trim();
    let (scheme, rest) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("FC") {
        parse_key_colon_base64(Scheme::Fc, "FC", rest)
    } else if scheme.eq_ignore_ascii_case(acs3::ALGORITHM) {
        acs3::parse(rest)
    } else if scheme.eq_ignore_ascii_case("acs") {
        parse_key_colon_base64(Scheme::AcsV1, "acs", rest)
    } else if scheme.is_empty() {
        Err(AuthError::MalformedAuthorization(
            "empty Authorization header".into(),
        ))
    } else {
        let shown: String = scheme.chars().take(32).collect();
        Err(AuthError::MalformedAuthorization(format!(
            "unsupported authorization scheme '{}'",
            shown.escape_debug()
        )))
    }
}

/// `<ak>:<base64 signature>` of the FC and acs v1 schemes.
fn parse_key_colon_base64(
    scheme: Scheme,
    name: &str,
    rest: &str,
) -> Result<ParsedAuthorization, AuthError> {
    let malformed = |why: &str| AuthError::MalformedAuthorization(format!("{name}: {why}"));
    let (ak, signature) = rest
        .split_once(':')
        .ok_or_else(|| malformed("expected '<AccessKeyId>:<Signature>'"))?;
    if ak.is_empty() || ak.contains(char::is_whitespace) {
        return Err(malformed("invalid AccessKeyId"));
    }
    if signature.is_empty() {
        return Err(malformed("empty signature"));
    }
    let signature = STANDARD
        .decode(signature)
        .map_err(|_| malformed("signature is not valid base64"))?;
    Ok(ParsedAuthorization {
        scheme,
        access_key_id: ak.to_string(),
        signature,
        signed_headers: Vec::new(),
    })
}

/// Verifies a parsed authorization against the request with the given secret.
///
/// Checks, in order: the scheme's date header is present (FC: `Date`, else `x-fc-date`; ACS3: `x-acs-date`;
/// acs v1: `Date`); the request time is within ±15 minutes of `now`; for ACS3, `host` and `x-acs-date` are
/// among `SignedHeaders`, `x-acs-content-sha256` (if present) equals `body_sha256_hex` and every name in
/// `SignedHeaders` is present; then the signature, in constant time, trying the tolerated client variants of
/// spec §3.1 for the FC scheme. `Content-MD5` is signed but not compared with the body here (only its SHA-256
/// is known): [`verify_head`] and [`BodyCheck`] do that.
pub fn verify(
    auth: &ParsedAuthorization,
    req: &RequestParts,
    secret: &SecretKey,
    now: time::OffsetDateTime,
) -> Result<(), AuthError> {
    verify_at(auth, req, secret, now).map(|_| ())
}

/// A signature verified from the request head by [`verify_head`].
#[derive(Debug, Clone)]
pub struct Verified {
    /// What the body must hash to (the signed `Content-MD5` / `x-acs-content-sha256`); check it once read.
    pub body: BodyCheck,
    /// The signature's identity, for [`ReplayCache`].
    pub replay_key: ReplayKey,
    /// The signature covers a per-request nonce (`x-acs-signature-nonce`), so a second sighting is a replay.
    pub nonce_signed: bool,
    /// How much longer the ±15 minute window accepts this signature.
    pub valid_for: std::time::Duration,
}

/// Verifies the signature from the request head alone, before any of the body is read.
///
/// No scheme signs the body itself: FC and acs v1 sign the `Content-MD5` header (when sent), ACS3 signs the
/// payload hash that it also sends as `x-acs-content-sha256`. The signature is checked over those claims,
/// and the returned [`Verified::body`] checks the body against them once it is read. An ACS3 request that
/// declares a body (`Content-Length` > 0 or `Transfer-Encoding`) must send `x-acs-content-sha256` (the Tea
/// SDK always does); without one the payload is taken to be empty. Otherwise the checks of [`verify`].
pub fn verify_head(
    auth: &ParsedAuthorization,
    head: &RequestHead,
    secret: &SecretKey,
    now: time::OffsetDateTime,
) -> Result<Verified, AuthError> {
    let probe = head.with_body_sha256(body::EMPTY_SHA256);
    let (payload_hash, body) = match auth.scheme {
        Scheme::Acs3 => {
            let hash = match wire::header(&probe, "x-acs-content-sha256") {
                Some(claimed) => claimed.trim().to_ascii_lowercase(),
                None if declares_body(&probe) => {
                    return Err(AuthError::MissingRequiredHeader(
                        "x-acs-content-sha256".into(),
                    ));
                }
                None => body::EMPTY_SHA256.to_owned(),
            };
            let check = BodyCheck::sha256(&hash);
            (hash, check)
        }
        Scheme::Fc | Scheme::AcsV1 => (
            body::EMPTY_SHA256.to_owned(),
            BodyCheck::content_md5(wire::header(&probe, "content-md5")),
        ),
    };
    let req = head.with_body_sha256(&payload_hash);
    let request_time = verify_at(auth, &req, secret, now)?;
    let valid_until = request_time + clock::MAX_SKEW;
    let nonce_present =
        wire::header(&req, "x-acs-signature-nonce").is_some_and(|n| !n.trim().is_empty());
    let nonce_signed = nonce_present
        && match auth.scheme {
            Scheme::Acs3 => auth
                .signed_headers
                .iter()
                .any(|n| n == "x-acs-signature-nonce"),
            // acs v1 signs every x-acs-* header.
            Scheme::AcsV1 => true,
            Scheme::Fc => false,
        };
    Ok(Verified {
        body,
        replay_key: ReplayKey::of(auth),
        nonce_signed,
        valid_for: (valid_until - now).try_into().unwrap_or_default(),
    })
}

/// Whether the head announces a body: a non-zero `Content-Length` or any `Transfer-Encoding`.
fn declares_body(req: &RequestParts) -> bool {
    wire::header(req, "transfer-encoding").is_some()
        || wire::header(req, "content-length").is_some_and(|n| n.trim() != "0")
}

/// [`verify`], returning the request time the skew check accepted.
fn verify_at(
    auth: &ParsedAuthorization,
    req: &RequestParts,
    secret: &SecretKey,
    now: time::OffsetDateTime,
) -> Result<time::OffsetDateTime, AuthError> {
    let missing = |name: &str| AuthError::MissingRequiredHeader(name.to_string());
    let (request_time, signature_ok) = match auth.scheme {
        Scheme::Fc => {
            let date = fc::request_date(req).ok_or_else(|| missing("Date"))?;
            let time = clock::check_skew("Date", date, clock::parse_http_date, now)?;
            (time, fc::verify(&auth.signature, req, secret))
        }
        Scheme::Acs3 => {
            let date = wire::header(req, "x-acs-date").ok_or_else(|| missing("x-acs-date"))?;
            let time = clock::check_skew("x-acs-date", date, clock::parse_acs_date, now)?;
            // An unsigned date would make the skew check worthless; an unsigned host lets a request signed
            // for another endpoint through.
            if let Some(unsigned) = acs3::REQUIRED_SIGNED_HEADERS
                .iter()
                .find(|name| !auth.signed_headers.iter().any(|s| s == *name))
            {
                return Err(AuthError::RequiredHeaderNotSigned((*unsigned).to_owned()));
            }
            if let Some(claimed) = wire::header(req, "x-acs-content-sha256")
                && !claimed.trim().eq_ignore_ascii_case(req.body_sha256_hex)
            {
                return Err(AuthError::ContentSha256Mismatch);
            }
            if let Some(absent) = auth
                .signed_headers
                .iter()
                .find(|name| wire::header(req, name).is_none())
            {
                return Err(missing(absent));
            }
            (
                time,
                acs3::verify(&auth.signature, &auth.signed_headers, req, secret),
            )
        }
        Scheme::AcsV1 => {
            let date = wire::header(req, "date").ok_or_else(|| missing("Date"))?;
            let time = clock::check_skew("Date", date, clock::parse_http_date, now)?;
            (time, acs1::verify(&auth.signature, req, secret))
        }
    };
    if signature_ok {
        Ok(request_time)
    } else {
        Err(AuthError::SignatureNotMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(value: &str, expected: Result<(Scheme, &str), &str>) {
        match (parse_authorization(value), expected) {
            (Ok(got), Ok((scheme, ak))) => {
                assert_eq!(
                    (got.scheme, got.access_key_id.as_str()),
                    (scheme, ak),
                    "{value:?}"
                )
            }
            (Err(AuthError::MalformedAuthorization(why)), Err(fragment)) => {
                assert!(
                    why.contains(fragment),
                    "{value:?}: {why:?} lacks {fragment:?}"
                )
            }
            (got, _) => panic!("{value:?}: unexpected {got:?}"),
        }
    }

    #[test]
    fn parses_and_rejects_authorization_headers() {
        check(
            "FC LTAI5tTestAccessKey:DjJ+tZG3FodvRh+espDG2zuPtHGIwAftgV6D95LxCnw=",
            Ok((Scheme::Fc, "LTAI5tTestAccessKey")),
        );
        check("fc  STS.ak:AAAA ", Ok((Scheme::Fc, "STS.ak")));
        check("acs ak:AAAA", Ok((Scheme::AcsV1, "ak")));
        check(
            "ACS3-HMAC-SHA256 Credential=ak, SignedHeaders=host;x-acs-date, Signature=00ff",
            Ok((Scheme::Acs3, "ak")),
        );
        check("", Err("empty"));
        check("FC nocolon", Err("<AccessKeyId>:<Signature>"));
        check("FC :AAAA", Err("AccessKeyId"));
        check("FC ak:", Err("empty signature"));
        check("FC ak:not*base64", Err("base64"));
        check("acs ak", Err("<AccessKeyId>:<Signature>"));
        check("Bearer x", Err("unsupported authorization scheme 'Bearer'"));
        check(
            "ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=host",
            Err("missing Signature="),
        );
        check(
            "ACS3-HMAC-SHA256 SignedHeaders=host,Signature=00",
            Err("missing Credential="),
        );
        check(
            "ACS3-HMAC-SHA256 Credential=ak,Signature=00",
            Err("missing SignedHeaders="),
        );
        check(
            "ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=host,Signature=xyz",
            Err("not hex"),
        );
        check("ACS3-HMAC-SHA256 Credential", Err("key=value"));
    }

    #[test]
    fn signed_headers_are_normalized() {
        let parsed = parse_authorization(
            "ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=X-Acs-Date;Host;;host,Signature=00",
        )
        .unwrap();
        assert_eq!(parsed.signed_headers, vec!["host", "x-acs-date"]);
        assert_eq!(parsed.signature, vec![0]);
    }
}
