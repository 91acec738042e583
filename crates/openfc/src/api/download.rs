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

/// A single `bytes=` range; `Ok(None)` means serve everything (absent, multi-range or other units).
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
            let n: u64 = n.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            size.saturating_sub(n)..size
        }
        (a, "") => a.parse().map_err(|_| ())?..size,
        (a, b) => {
            let (a, b): (u64, u64) = (a.parse().map_err(|_| ())?, b.parse().map_err(|_| ())?);
            if b < a {
                return Err(());
            }
            a..(b + 1).min(size)
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
}
