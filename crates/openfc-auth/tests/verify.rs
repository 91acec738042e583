//! `verify` round trips and failures for each scheme.

mod common;

use common::*;
use openfc_auth::*;
use sha2::{Digest, Sha256};
use time::Duration;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Fc,
    Acs3,
    AcsV1,
}

const KINDS: [Kind; 3] = [Kind::Fc, Kind::Acs3, Kind::AcsV1];

impl Kind {
    /// A typical request of the clients that use this scheme.
    fn request(self) -> Req {
        match self {
            Kind::Fc => fc_api_request(),
            Kind::Acs3 => {
                let body = br#"{"functionName":"fn"}"#;
                Req::new(
                    "POST",
                    "/2021-04-06/services/svc%20name/functions",
                    Some("prefix=a+b%2Bc&limit=10"),
                    &[
                        ("host", "127.0.0.1:9000"),
                        ("x-acs-version", "2021-04-06"),
                        ("x-acs-action", "CreateFunction"),
                        ("x-acs-date", "2006-01-02T15:04:05Z"),
                        ("x-acs-signature-nonce", "n1"),
                        ("x-acs-content-sha256", &hex::encode(Sha256::digest(body))),
                        ("content-type", "application/json; charset=utf-8"),
                    ],
                    body,
                )
            }
            Kind::AcsV1 => Req::new(
                "GET",
                "/2021-04-06/services/svc/functions/fn",
                Some("qualifier=LATEST"),
                &[
                    ("date", DATE),
                    ("accept", "application/json"),
                    ("x-acs-action", "GetFunction"),
                    ("x-acs-version", "2021-04-06"),
                    ("x-acs-signature-nonce", "n1"),
                ],
                b"",
            ),
        }
    }

    /// Signs `req` as the client would; ACS3 signs every header the request carries.
    fn sign(self, secret: &str, req: &Req) -> String {
        let secret = SecretKey::new(secret.into());
        req.view(|parts| match self {
            Kind::Fc => fc_authorization(AK, &secret, parts),
            Kind::Acs3 => {
                let names: Vec<&str> = parts.headers.iter().map(|&(n, _)| n).collect();
                acs3_authorization(AK, &secret, parts, &names)
            }
            Kind::AcsV1 => acs1_authorization(AK, &secret, parts),
        })
    }

    fn date_header(self) -> &'static str {
        match self {
            Kind::Acs3 => "x-acs-date",
            Kind::Fc | Kind::AcsV1 => "Date",
        }
    }

    fn action_header(self) -> &'static str {
        match self {
            Kind::Fc => "x-fc-trace-id",
            Kind::Acs3 | Kind::AcsV1 => "x-acs-action",
        }
    }
}

#[test]
fn round_trip_and_clock_skew() {
    for kind in KINDS {
        let req = kind.request();
        let auth = kind.sign(SECRET, &req);
        for minutes in [0, 14, -14] {
            check(&auth, &req, T + Duration::minutes(minutes), Ok(()));
        }
        let parsed = parse_authorization(&auth).unwrap();
        for minutes in [16, -16] {
            let got = req.view(|p| {
                verify(
                    &parsed,
                    p,
                    &SecretKey::new(SECRET.into()),
                    T + Duration::minutes(minutes),
                )
            });
            skewed("2006-01-02T15:04:05Z")(got);
        }
    }
}

#[test]
fn wrong_secret_and_tampering_fail() {
    for kind in KINDS {
        let req = kind.request();
        check(
            &kind.sign("other-secret", &req),
            &req,
            T,
            Err(AuthError::SignatureNotMatch),
        );
        let auth = kind.sign(SECRET, &req);
        let tampered = [
            req.clone().with_path("/2016-08-15/services/evil/functions"),
            req.clone()
                .with_header(kind.action_header(), "DeleteService"),
            req.clone().with_header("Content-Type", "text/plain"),
            Req {
                method: "PUT",
                ..req.clone()
            },
        ];
        for bad in &tampered {
            check(&auth, bad, T, Err(AuthError::SignatureNotMatch));
        }
    }
}

#[test]
fn missing_or_invalid_date_is_rejected_before_the_signature() {
    for kind in KINDS {
        let req = kind.request();
        let missing = Err(AuthError::MissingRequiredHeader(
            kind.date_header().to_string(),
        ));
        check(
            &kind.sign(SECRET, &req),
            &req.clone().without_header(kind.date_header()),
            T,
            missing.clone(),
        );
        check(
            &kind.sign("other-secret", &req),
            &req.clone().without_header(kind.date_header()),
            T,
            missing,
        );
        let garbled = req.with_header(kind.date_header(), "yesterday");
        let parsed = parse_authorization(&kind.sign(SECRET, &garbled)).unwrap();
        skewed("yesterday")(
            garbled.view(|p| verify(&parsed, p, &SecretKey::new(SECRET.into()), T)),
        );
    }
}

#[test]
fn fc_accepts_x_fc_date_instead_of_date() {
    let req = Kind::Fc
        .request()
        .without_header("Date")
        .with_header("X-Fc-Date", DATE);
    check(&Kind::Fc.sign(SECRET, &req), &req, T, Ok(()));
    check(&Kind::Fc.sign(SECRET, &req), &req, T + Duration::minutes(16), Err(AuthError::RequestTimeTooSkewed(
        "the difference between the request time 2006-01-02T15:04:05Z (Date) and the server time 2006-01-02T15:20:05Z exceeds 15 minutes".into(),
    )));
}

#[test]
fn acs3_body_hash_and_signed_headers() {
    let req = Kind::Acs3.request();
    let auth = Kind::Acs3.sign(SECRET, &req);
    check(
        &auth,
        &req.clone().with_body(b"{}"),
        T,
        Err(AuthError::ContentSha256Mismatch),
    );
    check(
        &auth,
        &req.clone().without_header("host"),
        T,
        Err(AuthError::MissingRequiredHeader("host".into())),
    );
    check(
        &auth,
        &req.clone().with_query("prefix=a+b%2Bc&limit=11"),
        T,
        Err(AuthError::SignatureNotMatch),
    );
    // Values are trimmed and header names are case-insensitive, so this is the same request.
    let same = req.clone().with_header("X-ACS-ACTION", "  CreateFunction ");
    check(&auth, &same, T, Ok(()));
    // Without x-acs-content-sha256 the payload hash still comes from the body.
    let unsent = req.clone().without_header("x-acs-content-sha256");
    let auth = Kind::Acs3.sign(SECRET, &unsent);
    check(&auth, &unsent, T, Ok(()));
    check(
        &auth,
        &unsent.with_body(b"{}"),
        T,
        Err(AuthError::SignatureNotMatch),
    );
}

#[test]
fn acs3_requires_host_and_x_acs_date_among_signed_headers() {
    let req = Kind::Acs3.request();
    let secret = SecretKey::new(SECRET.into());
    for unsigned in ["host", "x-acs-date"] {
        let names: Vec<&str> = req
            .headers
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !n.eq_ignore_ascii_case(unsigned))
            .collect();
        let auth = req.view(|p| acs3_authorization(AK, &secret, p, &names));
        check(
            &auth,
            &req,
            T,
            Err(AuthError::RequiredHeaderNotSigned(unsigned.into())),
        );
    }
}

/// `verify_head` on the request as the server sees it before reading the body.
fn verify_head_of(auth: &str, req: &Req, now: time::OffsetDateTime) -> Result<Verified, AuthError> {
    let parsed = parse_authorization(auth).unwrap();
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let head = RequestHead {
        method: req.method,
        raw_path: &req.path,
        raw_query: req.query.as_deref(),
        headers: &headers,
    };
    verify_head(&parsed, &head, &SecretKey::new(SECRET.into()), now)
}

#[test]
fn verify_head_binds_the_body_through_content_md5() {
    use base64::Engine as _;
    let body = br#"{"functionName":"fn"}"#;
    let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body));
    let req = fc_api_request().with_header("Content-MD5", &md5);
    let verified = verify_head_of(&fc_signed(&req), &req, T + Duration::minutes(5)).unwrap();
    assert_eq!(verified.body.check(body), Ok(()));
    assert_eq!(
        verified.body.check(br#"{"functionName":"evil"}"#),
        Err(AuthError::ContentMd5Mismatch)
    );
    assert!(!verified.nonce_signed, "the FC scheme has no nonce");
    assert_eq!(verified.valid_for, std::time::Duration::from_secs(600));
    // Without Content-MD5 (fc2 Python) nothing about the body is signed.
    let req = fc_api_request();
    let verified = verify_head_of(&fc_signed(&req), &req, T).unwrap();
    assert!(!verified.body.is_signed());
    // A changed Content-MD5 breaks the signature itself.
    let signed = fc_signed(&req.clone().with_header("Content-MD5", &md5));
    assert_eq!(
        verify_head_of(&signed, &req.with_header("Content-MD5", "AAAA"), T).unwrap_err(),
        AuthError::SignatureNotMatch
    );
}

#[test]
fn verify_head_binds_the_body_through_x_acs_content_sha256() {
    let body = br#"{"functionName":"fn"}"#;
    let req = Kind::Acs3.request().with_header("Content-Length", "21");
    let auth = Kind::Acs3.sign(SECRET, &req);
    let verified = verify_head_of(&auth, &req, T).unwrap();
    assert!(verified.nonce_signed, "Tea signs x-acs-signature-nonce");
    assert_eq!(verified.valid_for, std::time::Duration::from_secs(900));
    assert_eq!(verified.body.check(body), Ok(()));
    assert_eq!(
        verified.body.check(b"{}"),
        Err(AuthError::ContentSha256Mismatch)
    );
    // The head alone cannot stand for a body it does not hash.
    let unhashed = req.clone().without_header("x-acs-content-sha256");
    assert_eq!(
        verify_head_of(&Kind::Acs3.sign(SECRET, &unhashed), &unhashed, T).unwrap_err(),
        AuthError::MissingRequiredHeader("x-acs-content-sha256".into())
    );
    let chunked = unhashed
        .clone()
        .without_header("Content-Length")
        .with_header("Transfer-Encoding", "chunked");
    assert_eq!(
        verify_head_of(&Kind::Acs3.sign(SECRET, &chunked), &chunked, T).unwrap_err(),
        AuthError::MissingRequiredHeader("x-acs-content-sha256".into())
    );
    // Without a declared body the payload is the empty one.
    let bodiless = unhashed.without_header("Content-Length").with_body(b"");
    let verified = verify_head_of(&Kind::Acs3.sign(SECRET, &bodiless), &bodiless, T).unwrap();
    assert_eq!(verified.body.check(b""), Ok(()));
    assert_eq!(
        verified.body.check(b"x"),
        Err(AuthError::ContentSha256Mismatch)
    );
    // Without a signed nonce a repeat is not necessarily a replay.
    let names = [
        "host",
        "x-acs-date",
        "x-acs-content-sha256",
        "x-acs-action",
        "content-length",
    ];
    let auth = req.view(|p| acs3_authorization(AK, &SecretKey::new(SECRET.into()), p, &names));
    assert!(!verify_head_of(&auth, &req, T).unwrap().nonce_signed);
}

#[test]
fn verify_head_agrees_with_verify_and_keys_replays_per_signature() {
    for kind in KINDS {
        let req = kind.request();
        let auth = kind.sign(SECRET, &req);
        let verified = verify_head_of(&auth, &req, T).unwrap();
        assert_eq!(verified.nonce_signed, !matches!(kind, Kind::Fc), "{kind:?}");
        let again = verify_head_of(&auth, &req, T + Duration::minutes(1)).unwrap();
        assert_eq!(verified.replay_key, again.replay_key);
        let other = req.clone().with_header(kind.action_header(), "Other");
        let other_key = verify_head_of(&kind.sign(SECRET, &other), &other, T)
            .unwrap()
            .replay_key;
        assert_ne!(verified.replay_key, other_key, "{kind:?}");
        for bad in [
            req.clone()
                .with_header(kind.action_header(), "DeleteService"),
            req.clone().with_path("/2016-08-15/services/evil/functions"),
        ] {
            assert_eq!(
                verify_head_of(&auth, &bad, T).unwrap_err(),
                AuthError::SignatureNotMatch,
                "{kind:?}"
            );
        }
    }
}
