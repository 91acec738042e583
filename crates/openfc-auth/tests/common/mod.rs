//! Helpers shared by the integration tests: an owned, tweakable request and the verification check.
#![allow(dead_code)]

use openfc_auth::*;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::datetime;

pub const SECRET: &str = "test-secret-key";
pub const AK: &str = "LTAI5tTestAccessKey";
pub const DATE: &str = "Mon, 02 Jan 2006 15:04:05 GMT";
pub const T: OffsetDateTime = datetime!(2006-01-02 15:04:05 UTC);

/// An owned request that can be tweaked before being viewed as [`RequestParts`].
#[derive(Clone)]
pub struct Req {
    pub method: &'static str,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body_sha256: String,
}

impl Req {
    pub fn new(
        method: &'static str,
        path: &str,
        query: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Self {
        Req {
            method,
            path: path.into(),
            query: query.map(Into::into),
            headers: headers.iter().map(|&(n, v)| (n.into(), v.into())).collect(),
            body_sha256: hex::encode(Sha256::digest(body)),
        }
    }
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn without_header(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }
    pub fn with_path(mut self, path: &str) -> Self {
        self.path = path.into();
        self
    }
    pub fn with_query(mut self, query: &str) -> Self {
        self.query = Some(query.into());
        self
    }
    pub fn with_body(mut self, body: &[u8]) -> Self {
        self.body_sha256 = hex::encode(Sha256::digest(body));
        self
    }
    pub fn view<R>(&self, f: impl FnOnce(&RequestParts) -> R) -> R {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        f(&RequestParts {
            method: self.method,
            raw_path: &self.path,
            raw_query: self.query.as_deref(),
            headers: &headers,
            body_sha256_hex: &self.body_sha256,
        })
    }
}

/// The standard FC-scheme Authorization of `req` (what the fc2 SDKs send).
pub fn fc_signed(req: &Req) -> String {
    req.view(|parts| fc_authorization(AK, &SecretKey::new(SECRET.into()), parts))
}

/// A management call as the fc2 SDKs send it (FC scheme, not a `/proxy/` path).
pub fn fc_api_request() -> Req {
    Req::new(
        "POST",
        "/2016-08-15/services/svc/functions",
        None,
        &[
            ("Date", DATE),
            ("Content-Type", "application/json"),
            ("x-fc-account-id", "123"),
            ("x-fc-trace-id", "t1"),
        ],
        br#"{"functionName":"fn"}"#,
    )
}

/// Verifies `authorization` against `req` with the test secret at `now`.
pub fn check(authorization: &str, req: &Req, now: OffsetDateTime, expected: Result<(), AuthError>) {
    let parsed = parse_authorization(authorization).expect("well-formed Authorization");
    let got = req.view(|parts| verify(&parsed, parts, &SecretKey::new(SECRET.into()), now));
    assert_eq!(
        got, expected,
        "{authorization} {} {:?}",
        req.path, req.query
    );
}

pub fn skewed(message_fragment: &str) -> impl Fn(Result<(), AuthError>) {
    let fragment = message_fragment.to_string();
    move |got| {
        assert!(
            matches!(&got, Err(AuthError::RequestTimeTooSkewed(m)) if m.contains(&fragment)),
            "{got:?}"
        )
    }
}
