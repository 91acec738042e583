//! Request authentication: every API request is signed (FC, ACS3 or acs v1); the caller is the account
//! owning the AccessKey. Signature logic lives in `openfc-auth`; this is the glue to HTTP and the keyring.

use axum::http::request::Parts;
use openfc_auth::{AuthError, RequestParts, Scheme, parse_authorization, verify};
use openfc_core::ports::KeyStatus;
use openfc_core::wire::ErrorCode;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::keys::{KeyLookup, Keyring};

/// SHA-256 of an empty body, which most requests have.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Returns the account id of the verified caller.
pub async fn authenticate(keyring: &Keyring, parts: &Parts, body: &[u8]) -> Result<String, ApiError> {
    let header = parts.headers.get("authorization").ok_or_else(|| {
        ApiError::new(ErrorCode::MissingRequiredHeader, "required HTTP header Authorization was not specified")
    })?;
    let header = header.to_str().map_err(|_| bad_header("it is not ASCII"))?;
    let auth = parse_authorization(header).map_err(map_auth_error)?;
    let key = keyring.lookup(&auth.access_key_id).await.map_err(|e| match e {
        KeyLookup::Unknown => {
            ApiError::new(ErrorCode::InvalidAccessKeyId, format!("invalid access key ID '{}'", auth.access_key_id))
        }
        KeyLookup::Backend(detail) => ApiError::internal(detail),
    })?;
    if key.status != KeyStatus::Active {
        return Err(ApiError::new(
            ErrorCode::AccessDenied,
            format!("the access key '{}' is disabled", auth.access_key_id),
        ));
    }
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    let body_hash = match auth.scheme {
        Scheme::Acs3 if !body.is_empty() => hex::encode(Sha256::digest(body)),
        _ => EMPTY_SHA256.to_owned(),
    };
    let req = RequestParts {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query(),
        headers: &headers,
        body_sha256_hex: &body_hash,
    };
    verify(&auth, &req, &key.secret, time::OffsetDateTime::now_utc()).map_err(map_auth_error)?;
    Ok(key.account_id)
}

fn bad_header(reason: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, format!("the Authorization header is malformed: {reason}"))
}

fn map_auth_error(e: AuthError) -> ApiError {
    match e {
        AuthError::MissingRequiredHeader(h) => {
            ApiError::new(ErrorCode::MissingRequiredHeader, format!("required HTTP header {h} was not specified"))
        }
        AuthError::MalformedAuthorization(reason) => bad_header(&reason),
        AuthError::RequestTimeTooSkewed(msg) => ApiError::new(ErrorCode::RequestTimeTooSkewed, msg),
        AuthError::ContentSha256Mismatch => {
            ApiError::new(ErrorCode::InvalidArgument, "x-acs-content-sha256 does not match the request body")
        }
        AuthError::SignatureNotMatch => ApiError::new(
            ErrorCode::SignatureNotMatch,
            "The request signature we calculated does not match the signature you provided. \
             Check your access key and signing method",
        ),
    }
}
