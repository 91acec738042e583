//! openfc's own signed, expiring code URLs (GetFunctionCode) and serving them: streamed, with
//! `Content-Length`, `ETag`, `X-Oss-Hash-Crc64ecma`, `HEAD` and single `Range` support. The URL carries
//! everything needed (key, expiry, checksum, size) under one HMAC, so serving needs no database read.

use std::ops::Range;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use openfc_auth::{sign_token, verify_token};
use openfc_core::ports::{BlobError, CodeRef};
use openfc_core::wire::ErrorCode;

use super::App;
use super::endpoint::Query;
use super::error::ApiError;

pub const PREFIX: &str = "/_openfc/code/";

fn message(key: &str, expires: &str, checksum: &str, size: &str) -> String {
    format!("{key}\n{expires}\n{checksum}\n{size}")
}

/// A URL for `code` valid for the configured lifetime, under the public base URL.
pub fn code_url(app: &App, code: &CodeRef) -> String {
    let expires = (time::OffsetDateTime::now_utc().unix_timestamp() as u64 + app.code_url_ttl).to_string();
    let (checksum, size) = (code.checksum.to_string(), code.size.to_string());
    let signature = sign_token(&app.url_key, &message(&code.key, &expires, &checksum, &size));
    format!(
        "{}{PREFIX}{}?Expires={expires}&Checksum={checksum}&Size={size}&Signature={signature}",
        app.public_url, code.key
    )
}

/// What a verified URL names.
struct Grant {
    key: String,
    checksum: String,
    size: u64,
}

fn verify(app: &App, key: &str, query: &Query) -> Result<Grant, ApiError> {
    let denied = |m: &str| ApiError::new(ErrorCode::AccessDenied, m.to_owned());
    let (Some(expires), Some(checksum), Some(size), Some(sig)) =
        (query.get("Expires"), query.get("Checksum"), query.get("Size"), query.get("Signature"))
    else {
        return Err(denied("the code URL lacks its Expires, Checksum, Size or Signature parameter"));
    };
    if !verify_token(&app.url_key, &message(key, expires, checksum, size), sig) {
        return Err(ApiError::new(
            ErrorCode::SignatureNotMatch,
            "the code URL signature does not match: the URL was altered",
        ));
    }
    let expires: i64 = expires.parse().map_err(|_| denied("the code URL has an invalid Expires"))?;
    if expires < time::OffsetDateTime::now_utc().unix_timestamp() {
        return Err(denied("the code URL has expired; call GetFunctionCode again for a new one"));
    }
    let size = size.parse().map_err(|_| denied("the code URL has an invalid Size"))?;
    Ok(Grant { key: key.to_owned(), checksum: checksum.to_owned(), size })
}

/// A byte position of a `Range` header: decimal digits only (no sign, no blanks); a value beyond `u64` is
/// `u64::MAX`, which is past the end of any object.
fn position(s: &str) -> Result<u64, ()> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    Ok(s.parse().unwrap_or(u64::MAX))
}

/// A single `bytes=` range (RFC 9110 §14.1.2); `Ok(None)` means serve everything (absent, multi-range or
/// other units), `Err` an unsatisfiable or malformed range. A last position past the end is clamped to the
/// object and a suffix longer than it is the whole object; a first position at or past the end is
/// unsatisfiable.
fn parse_range(value: Option<&HeaderValue>, size: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(spec) = value.and_then(|v| v.to_str().ok()).and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let range = match (a.trim(), b.trim()) {
        ("", n) => {
            let n = position(n)?;
            if n == 0 {
                return Err(());
            }
            size.saturating_sub(n)..size
        }
        (a, "") => position(a)?..size,
        (a, b) => {
            let (a, b) = (position(a)?, position(b)?);
            if b < a {
                return Err(());
            }
            a..b.saturating_add(1).min(size)
        }
    };
    if range.start >= size { Err(()) } else { Ok(Some(range)) }
}

pub async fn serve(app: &App, method: &Method, key: &str, query: &Query, headers: &HeaderMap) -> Result<Response, ApiError> {
    let grant = verify(app, key, query)?;
    let range = parse_range(headers.get(header::RANGE), grant.size).map_err(|()| {
        ApiError::new(ErrorCode::InvalidRange, format!("the requested range is not satisfiable (size {})", grant.size))
    })?;
    let etag = format!("\"{}\"", grant.key.rsplit('/').next().unwrap_or("").trim_end_matches(".zip"));
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, "application/zip")
        .header(header::ETAG, etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header("x-oss-hash-crc64ecma", &grant.checksum);
    let served = range.clone().unwrap_or(0..grant.size);
    builder = builder.header(header::CONTENT_LENGTH, served.end - served.start);
    if range.is_some() {
        builder = builder
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {}-{}/{}", served.start, served.end - 1, grant.size));
    }
    let body = if *method == Method::HEAD {
        app.fc.code.size(&grant.key).await.map_err(blob_error)?;
        Body::empty()
    } else {
        let read = app.fc.code.get(&grant.key, Some(served)).await.map_err(blob_error)?;
        Body::from_stream(read.stream)
    };
    builder.body(body).map_err(|e| ApiError::internal(format!("building download response: {e}")))
}

fn blob_error(e: BlobError) -> ApiError {
    ApiError::internal(format!("code store: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: &str, size: u64, expected: Result<Option<Range<u64>>, ()>) {
        let v = HeaderValue::from_str(spec).unwrap();
        assert_eq!(parse_range(Some(&v), size), expected, "{spec}");
    }

    #[test]
    fn ranges() {
        check("bytes=0-9", 100, Ok(Some(0..10)));
        check("bytes=90-200", 100, Ok(Some(90..100)));
        check("bytes=10-", 100, Ok(Some(10..100)));
        check("bytes=-10", 100, Ok(Some(90..100)));
        check("bytes=-200", 100, Ok(Some(0..100)));
        check("bytes=100-", 100, Err(()));
        check("bytes=5-4", 100, Err(()));
        check("bytes=-0", 100, Err(()));
        check("bytes=x-1", 100, Err(()));
        check("bytes=0-1,5-6", 100, Ok(None));
        check("items=0-1", 100, Ok(None));
        assert_eq!(parse_range(None, 100), Ok(None));
    }

    #[test]
    fn ranges_at_and_beyond_the_u64_limits() {
        let max = u64::MAX;
        // A last position past the end (up to u64::MAX and beyond) is clamped to the object.
        check(&format!("bytes=0-{max}"), 100, Ok(Some(0..100)));
        check(&format!("bytes=99-{max}"), 100, Ok(Some(99..100)));
        check(&format!("bytes=5-{}", max - 1), 100, Ok(Some(5..100)));
        check("bytes=0-99999999999999999999999", 100, Ok(Some(0..100)));
        // A first position at or past the end is unsatisfiable, however large.
        check(&format!("bytes=100-{max}"), 100, Err(()));
        check(&format!("bytes={max}-{max}"), 100, Err(()));
        check(&format!("bytes={max}-"), 100, Err(()));
        check("bytes=99999999999999999999999-", 100, Err(()));
        // A suffix longer than the object is the object.
        check(&format!("bytes=-{max}"), 100, Ok(Some(0..100)));
        check("bytes=-99999999999999999999999", 100, Ok(Some(0..100)));
        // The whole u64 range of an object of (nearly) u64::MAX bytes.
        check(&format!("bytes=0-{max}"), max, Ok(Some(0..max)));
        check(&format!("bytes={}-{max}", max - 1), max, Ok(Some(max - 1..max)));
        // Signs and blanks inside a position are not digits.
        check("bytes=+1-5", 100, Err(()));
        check("bytes=1-+5", 100, Err(()));
        check("bytes=--5", 100, Err(()));
    }
}
