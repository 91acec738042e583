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
