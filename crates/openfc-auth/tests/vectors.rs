//! The worked examples of spec §3.5, byte for byte, plus acs v1 vectors computed with the Tea SDK's
//! `alibabacloud-openapi-util` 0.2.4 (`Client.get_string_to_sign` / `get_roasignature`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use openfc_auth::*;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::datetime;

const SECRET: &str = "test-secret-key";
const AK: &str = "LTAI5tTestAccessKey";
const STS_AK: &str = "STS.LTAI5tTestAccessKey";
const DATE: &str = "Mon, 02 Jan 2006 15:04:05 GMT";
const REQUEST_TIME: OffsetDateTime = datetime!(2006-01-02 15:04:05 UTC);
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn secret() -> SecretKey {
    SecretKey::new(SECRET.to_string())
}

fn parts<'a>(
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    headers: &'a [(&'a str, &'a str)],
) -> RequestParts<'a> {
    RequestParts {
        method,
        raw_path: path,
        raw_query: query,
        headers,
        body_sha256_hex: EMPTY_SHA256,
    }
}

/// The server must accept what the client signer produced, at the request time.
fn assert_verifies(authorization: &str, req: &RequestParts, scheme: Scheme, ak: &str) {
    let parsed = parse_authorization(authorization).expect("parse");
    assert_eq!((parsed.scheme, parsed.access_key_id.as_str()), (scheme, ak));
    assert_eq!(
        verify(&parsed, req, &secret(), REQUEST_TIME),
        Ok(()),
        "{authorization}"
    );
}

fn check_fc(req: RequestParts, ak: &str, string_to_sign: Option<&str>, authorization: &str) {
    if let Some(expected) = string_to_sign {
        assert_eq!(fc_string_to_sign(&req), expected);
    }
    assert_eq!(fc_authorization(ak, &secret(), &req), authorization);
    assert_verifies(authorization, &req, Scheme::Fc, ak);
}

#[test]
fn a_management_call_with_md5_and_mixed_case_fc_header() {
    let headers = [
        ("content-md5", "GpnSTpYs+ecXfQWzwpWV5w=="),
        ("content-type", "application/json"),
        ("date", DATE),
        ("x-fc-account-id", "1234567890"),
        ("X-Fc-Trace-Id", "trace-1"),
        ("host", "1234567890.cn-shanghai.fc.aliyuncs.com"),
        ("user-agent", "aliyun-fc-sdk-v2.5.2.python-3.11"),
    ];
    check_fc(
        parts("POST", "/2021-04-06/services/svc/functions", None, &headers),
        AK,
        Some(
            "POST\nGpnSTpYs+ecXfQWzwpWV5w==\napplication/json\nMon, 02 Jan 2006 15:04:05 GMT\nx-fc-account-id:1234567890\nx-fc-trace-id:trace-1\n/2021-04-06/services/svc/functions",
        ),
        "FC LTAI5tTestAccessKey:gpPuHnyRAf4CW/1q/SRL20IoweSBw41UpSKfNW16R+Q=",
    );
}

#[test]
fn b_get_with_unsigned_query() {
    let headers = [("content-type", "application/json"), ("date", DATE)];
    check_fc(
        parts(
            "GET",
            "/2016-08-15/services/svc/functions",
            Some("limit=10&prefix=f"),
            &headers,
        ),
        AK,
        Some(
            "GET\n\napplication/json\nMon, 02 Jan 2006 15:04:05 GMT\n/2016-08-15/services/svc/functions",
        ),
        "FC LTAI5tTestAccessKey:DjJ+tZG3FodvRh+espDG2zuPtHGIwAftgV6D95LxCnw=",
    );
}

const C_HEADERS: [(&str, &str); 3] = [
    ("date", DATE),
    ("x-fc-security-token", "sts-token-xyz"),
    ("content-type", "text/plain"),
];
const C_PATH: &str = "/2021-04-06/proxy/svc.LATEST/fn/a%20b/c";
const C_STRING: &str = "POST\n\ntext/plain\nMon, 02 Jan 2006 15:04:05 GMT\nx-fc-security-token:sts-token-xyz\n/2021-04-06/proxy/svc.LATEST/fn/a b/c\na=hello world\nempty=\nflag\nx=1\nx=2";
const C_AUTH: &str = "FC STS.LTAI5tTestAccessKey:/T7fBt4CMb997sm55P7V2O/9ikKrSw9aMVdwCugb2Kg=";

#[test]
fn c_proxy_with_sts_escaped_path_and_multi_empty_bare_query() {
    let query = Some("x=2&x=1&a=hello%20world&empty=&flag");
    check_fc(
        parts("POST", C_PATH, query, &C_HEADERS),
        STS_AK,
        Some(C_STRING),
        C_AUTH,
    );
}

#[test]
fn c_without_bare_flag_as_node_signs_it() {
    check_fc(
        parts(
            "POST",
            C_PATH,
            Some("x=2&x=1&a=hello%20world&empty="),
            &C_HEADERS,
        ),
        STS_AK,
        None,
        "FC STS.LTAI5tTestAccessKey:l2OXE0RzidWxXAY7okCxzEPsgfv4qCNcLPAhNDOjvWc=",
    );
}

#[test]
fn d_proxy_without_query_ends_with_newline() {
    let headers = [("date", DATE)];
    check_fc(
        parts("GET", "/2021-04-06/proxy/svc/fn/", None, &headers),
        AK,
        Some("GET\n\n\nMon, 02 Jan 2006 15:04:05 GMT\n/2021-04-06/proxy/svc/fn/\n"),
        "FC LTAI5tTestAccessKey:5k1Yxgut/NkKdI8N1a2Omtiq0VrHHWKWlBgPvggoNAs=",
    );
}

#[test]
fn e_gateway_fc_util_query_is_identical_to_c() {
    let query = Some("a=hello%20world&empty=&flag&x=1&x=2");
    check_fc(
        parts("POST", C_PATH, query, &C_HEADERS),
        STS_AK,
        Some(C_STRING),
        C_AUTH,
    );
}

#[test]
fn f_signed_url_from_fc_go_sdk() {
    let headers = [
        ("Content-MD5", "ef5b43a0fe1d5b401b62c3ba33a7a3d6"),
        ("Content-Type", "text/json"),
        ("X-Fc-Trace-Id", "trace-id"),
    ];
    // Wire order deliberately unsorted; the signature parameter must be left out of the resource.
    let query = "x=xyz&x-fc-signature=QFdNhz0Dl%2BonUM%2FMvpX940WFH3H8OHayZHbby1c01aI%3D&a=123+45\
                 &x-fc-expires=1583221068&x-fc-access-key-id=akID&x-fc-security-token=stsToken&x=456";
    let req = parts(
        "GET",
        "/2016-08-15/proxy/service.LATEST/func/abc%20123",
        Some(query),
        &headers,
    );
    let string_to_sign = fc_signed_url_string_to_sign(&req);
    assert_eq!(
        string_to_sign,
        "GET\nef5b43a0fe1d5b401b62c3ba33a7a3d6\ntext/json\n1583221068\nx-fc-trace-id:trace-id\n/2016-08-15/proxy/service.LATEST/func/abc 123\na=123 45\nx-fc-access-key-id=akID\nx-fc-expires=1583221068\nx-fc-security-token=stsToken\nx=456\nx=xyz"
    );
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(b"S9MWOBG0AOWHSO9HPASP216QOPHT5YR4NLH3A")
            .unwrap();
    mac.update(string_to_sign.as_bytes());
    assert_eq!(
        STANDARD.encode(mac.finalize().into_bytes()),
        "QFdNhz0Dl+onUM/MvpX940WFH3H8OHayZHbby1c01aI="
    );
}

fn check_acs3(
    req: RequestParts,
    signed: &[&str],
    canonical: Option<&str>,
    string_to_sign: Option<&str>,
    authorization: &str,
) {
    let got = acs3_canonical_request(&req, signed);
    if let Some(expected) = canonical {
        assert_eq!(got, expected);
    }
    if let Some(expected) = string_to_sign {
        assert_eq!(
            format!(
                "ACS3-HMAC-SHA256\n{}",
                hex::encode(Sha256::digest(got.as_bytes()))
            ),
            expected
        );
    }
    assert_eq!(
        acs3_authorization(AK, &secret(), &req, signed),
        authorization
    );
    assert_verifies(authorization, &req, Scheme::Acs3, AK);
}

const G_SIGNED: &str = "accept;content-type;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version";

#[test]
fn g_acs3_post_create_service() {
    let body_hash = hex::encode(Sha256::digest(
        br#"{"description":"d","serviceName":"svc"}"#,
    ));
    assert_eq!(
        body_hash,
        "e223b6dd842bde551cd16977a00f9ce351fa60220d0938abdaef8edd04b66c5f"
    );
    let headers = [
        ("host", "1234567890.cn-shanghai.fc.aliyuncs.com"),
        ("x-acs-version", "2021-04-06"),
        ("x-acs-action", "CreateService"),
        (
            "user-agent",
            "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.6 TeaDSL/1",
        ),
        ("x-acs-date", "2006-01-02T15:04:05Z"),
        ("x-acs-signature-nonce", "0123456789abcdef0123456789abcdef"),
        ("accept", "application/json"),
        ("content-type", "application/json; charset=utf-8"),
        (
            "x-acs-content-sha256",
            "e223b6dd842bde551cd16977a00f9ce351fa60220d0938abdaef8edd04b66c5f",
        ),
    ];
    let req = RequestParts {
        body_sha256_hex: &body_hash,
        ..parts("POST", "/2021-04-06/services", None, &headers)
    };
    // Header order and case of the signed-header list do not matter to the signer.
    let signed: Vec<&str> = G_SIGNED.split(';').rev().collect();
    check_acs3(
        req,
        &signed,
        Some(concat!(
            "POST\n/2021-04-06/services\n\n",
            "accept:application/json\ncontent-type:application/json; charset=utf-8\n",
            "host:1234567890.cn-shanghai.fc.aliyuncs.com\n",
            "user-agent:AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.6 TeaDSL/1\n",
            "x-acs-action:CreateService\n",
            "x-acs-content-sha256:e223b6dd842bde551cd16977a00f9ce351fa60220d0938abdaef8edd04b66c5f\n",
            "x-acs-date:2006-01-02T15:04:05Z\nx-acs-signature-nonce:0123456789abcdef0123456789abcdef\n",
            "x-acs-version:2021-04-06\n\n",
            "accept;content-type;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n",
            "e223b6dd842bde551cd16977a00f9ce351fa60220d0938abdaef8edd04b66c5f",
        )),
        Some("ACS3-HMAC-SHA256\n8884e7af599593106c801f40d0f7ba953037a4d205b28d379b11198de2377efd"),
        &format!(
            "ACS3-HMAC-SHA256 Credential=LTAI5tTestAccessKey,SignedHeaders={G_SIGNED},Signature=f94d2b48a1cde88949b34e827d5ae1d0507c574be06b7512bc3a5cff82ee552c"
        ),
    );
}

#[test]
fn g_acs3_get_function_with_qualifier() {
    let headers = [
        ("host", "1234567890.cn-shanghai.fc.aliyuncs.com"),
        ("x-acs-version", "2021-04-06"),
        ("x-acs-action", "GetFunction"),
        ("x-acs-date", "2006-01-02T15:04:05Z"),
        ("x-acs-signature-nonce", "n1"),
        ("accept", "application/json"),
        ("x-acs-content-sha256", EMPTY_SHA256),
    ];
    let req = parts(
        "GET",
        "/2021-04-06/services/svc/functions/fn",
        Some("qualifier=LATEST"),
        &headers,
    );
    let signed = "accept;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version";
    let canonical = acs3_canonical_request(&req, &signed.split(';').collect::<Vec<_>>());
    assert_eq!(canonical.lines().nth(2), Some("qualifier=LATEST"));
    check_acs3(
        req,
        &signed.split(';').collect::<Vec<_>>(),
        None,
        None,
        &format!(
            "ACS3-HMAC-SHA256 Credential=LTAI5tTestAccessKey,SignedHeaders={signed},Signature=07bd74dff0cb0098ae22a56854ed4a100789631d4e5055486909e258b56e328b"
        ),
    );
}

fn check_acs1(req: RequestParts, string_to_sign: &str, authorization: &str) {
    assert_eq!(acs1_string_to_sign(&req), string_to_sign);
    assert_eq!(acs1_authorization(AK, &secret(), &req), authorization);
    assert_verifies(authorization, &req, Scheme::AcsV1, AK);
}

const V1_HEADERS: [(&str, &str); 5] = [
    ("date", DATE),
    ("accept", "application/json"),
    ("x-acs-version", "2021-04-06"),
    ("x-acs-signature-method", "HMAC-SHA1"),
    ("x-acs-signature-version", "1.0"),
];

#[test]
fn acs1_get_function_with_sorted_query_and_bare_key() {
    let headers: Vec<(&str, &str)> = V1_HEADERS
        .iter()
        .copied()
        .chain([
            ("x-acs-action", "GetFunction"),
            ("x-acs-signature-nonce", "n1"),
            ("host", "h:9000"),
            ("user-agent", "ua"),
        ])
        .collect();
    check_acs1(
        parts(
            "GET",
            "/2021-04-06/services/svc%20name/functions/fn",
            Some("qualifier=LATEST&flag=&a=x+y"),
            &headers,
        ),
        "GET\napplication/json\n\n\nMon, 02 Jan 2006 15:04:05 GMT\nx-acs-action:GetFunction\nx-acs-signature-method:HMAC-SHA1\nx-acs-signature-nonce:n1\nx-acs-signature-version:1.0\nx-acs-version:2021-04-06\n/2021-04-06/services/svc%20name/functions/fn?a=x y&flag&qualifier=LATEST",
        "acs LTAI5tTestAccessKey:e6li+T3o0lRm+8bIxCEVP54WBGI=",
    );
}

#[test]
fn acs1_create_service_with_md5_and_content_type() {
    let headers: Vec<(&str, &str)> = V1_HEADERS
        .iter()
        .copied()
        .chain([
            ("content-type", "application/json; charset=utf-8"),
            ("content-md5", "GpnSTpYs+ecXfQWzwpWV5w=="),
            ("x-acs-action", "CreateService"),
            ("x-acs-signature-nonce", "n2"),
        ])
        .collect();
    check_acs1(
        parts("POST", "/2021-04-06/services", None, &headers),
        "POST\napplication/json\nGpnSTpYs+ecXfQWzwpWV5w==\napplication/json; charset=utf-8\nMon, 02 Jan 2006 15:04:05 GMT\nx-acs-action:CreateService\nx-acs-signature-method:HMAC-SHA1\nx-acs-signature-nonce:n2\nx-acs-signature-version:1.0\nx-acs-version:2021-04-06\n/2021-04-06/services",
        "acs LTAI5tTestAccessKey:JU28yj8Lxw/nqbRorp3Vh8CLZfA=",
    );
}
