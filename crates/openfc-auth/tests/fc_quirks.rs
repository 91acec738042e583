//! The FC-scheme client quirks of spec §3.1 that `verify` must tolerate (and the ones it must not).

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use hmac::{Hmac, KeyInit, Mac};
use openfc_auth::AuthError;
use sha2::Sha256;

/// `FC ak:base64(HMAC-SHA256)` over a hand-built StringToSign, as the quirky client computes it.
fn fc_sign_string(string_to_sign: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(string_to_sign.as_bytes());
    format!("FC {AK}:{}", STANDARD.encode(mac.finalize().into_bytes()))
}

const PROXY_PATH: &str = "/2021-04-06/proxy/svc.LATEST/fn/a%20b/c";
const PROXY_WIRE_QUERY: &str = "x=2&x=1&a=hello%20world&empty=&flag";

fn proxy_request() -> Req {
    Req::new(
        "POST",
        PROXY_PATH,
        Some(PROXY_WIRE_QUERY),
        &[("date", DATE), ("content-type", "text/plain")],
        b"hi",
    )
}

/// The quirky signature must verify, and must differ from the standard one (else the test proves nothing).
fn check_quirk(string_to_sign: &str, req: &Req, expected: Result<(), AuthError>) {
    let auth = fc_sign_string(string_to_sign);
    assert_ne!(
        auth,
        fc_signed(req),
        "quirk equals the standard signature: {string_to_sign:?}"
    );
    check(&auth, req, T, expected);
}

#[test]
fn node_signs_layerarn_path_encoded() {
    let path =
        "/2016-08-15/layerarn/acs%3Afc%3Acn-hangzhou%3A123%3Alayers%2Fmy-layer%2Fversions%2F1";
    let req = Req::new(
        "GET",
        path,
        None,
        &[("date", DATE), ("x-fc-account-id", "123")],
        b"",
    );
    check_quirk(
        &format!("GET\n\n\n{DATE}\nx-fc-account-id:123\n{path}"),
        &req,
        Ok(()),
    );
}

#[test]
fn gateway_util_signs_proxy_query_in_wire_order() {
    let head = format!("POST\n\ntext/plain\n{DATE}\n/2021-04-06/proxy/svc.LATEST/fn/a b/c\n");
    check_quirk(
        &format!("{head}x=2\nx=1\na=hello world\nempty=\nflag"),
        &proxy_request(),
        Ok(()),
    );
    // A literal '+' stays '+' in the gateway's `unquote(query)`.
    let plus = proxy_request().with_query("b=1+2&a=3");
    check_quirk(&format!("{head}b=1+2\na=3"), &plus, Ok(()));
}

#[test]
fn bare_key_signed_as_flag_equals_verifies() {
    let head = format!("POST\n\ntext/plain\n{DATE}\n/2021-04-06/proxy/svc.LATEST/fn/a b/c\n");
    check_quirk(
        &format!("{head}a=hello world\nempty=\nflag=\nx=1\nx=2"),
        &proxy_request(),
        Ok(()),
    );
}

#[test]
fn gateway_util_unsigned_content_type_only_on_proxy_paths() {
    let proxy = format!(
        "POST\n\n\n{DATE}\n/2021-04-06/proxy/svc.LATEST/fn/a b/c\na=hello world\nempty=\nflag\nx=1\nx=2"
    );
    check_quirk(&proxy, &proxy_request(), Ok(()));
    let api = fc_api_request();
    let api_blank = format!(
        "POST\n\n\n{DATE}\nx-fc-account-id:123\nx-fc-trace-id:t1\n/2016-08-15/services/svc/functions"
    );
    check_quirk(&api_blank, &api, Err(AuthError::SignatureNotMatch));
}

#[test]
fn fc_query_is_signed_only_on_proxy_paths() {
    let api = fc_api_request();
    check(
        &fc_signed(&api),
        &api.clone().with_query("limit=5"),
        T,
        Ok(()),
    );
    let proxy = proxy_request();
    let auth = fc_signed(&proxy);
    check(
        &auth,
        &proxy
            .clone()
            .with_query("&x=2&x=1&a=hello%20world&empty=&flag&"),
        T,
        Ok(()),
    );
    check(
        &auth,
        &proxy
            .clone()
            .with_query("x=2&x=3&a=hello%20world&empty=&flag"),
        T,
        Err(AuthError::SignatureNotMatch),
    );
    check(
        &auth,
        &proxy.with_query("x=2&x=1&a=hello%20world&empty="),
        T,
        Err(AuthError::SignatureNotMatch),
    );
}
