//! Fuzz targets for what openfc-core reads from requests: the lenient JSON decoder with the function and
//! service shapes, code packages (base64 and zip validation), and timer schedules (cron and `@every`).
//! Custom-domain bodies and rewrite rules are fuzzed inside the crate (`domains/fuzz_tests.rs`), where the
//! shapes and compiled routes are visible. Harness and budget: docs/fuzzing.md.

include!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/harness.rs"));

use std::io::Cursor;
use std::time::Duration;

use bytes::Bytes;
use harness::fuzz;
use openfc_core::code::{PackageLimits, decode_zip_file, inspect};
use openfc_core::function::{FUNCTION_SHAPE, FunctionFields, parse_function_request};
use openfc_core::service::{SERVICE_SHAPE, ServiceFields};
use openfc_core::timers::{Schedule, every_duration, parse_schedule};
use openfc_core::triggers::validate_cron;
use openfc_core::wire::lenient::{Shape, normalize, parse_body};
use serde_json::Value;

const JSON_DICT: &[&[u8]] = &[
    b"null", b"true", b"1e400", b"-0", b"\"\\u0000\"", b"\"\\ud800\"", b"{}", b"[]", b"{\"a\":", b"\"code\":",
    b"\"zipFile\":", b"\"Runtime\":", b"\"INSTANCECONCURRENCY\":", b"\"environmentVariables\":", b"\"customContainerConfig\":",
    b"\"nasConfig\":", b"\"mountPoints\":", b"\"vpcConfig\":", b"\"logConfig\":", b"18446744073709551616", b",",
];

/// Object keys lower-cased all the way down: what a case-insensitive reader sees.
fn fold_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.to_ascii_lowercase(), fold_keys(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(fold_keys).collect()),
        other => other.clone(),
    }
}

/// No `null` anywhere and no two keys of one object equal but for case: the bodies on which lenient
/// decoding has nothing to drop or choose.
fn plain(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Object(m) => {
            let mut keys: Vec<String> = m.keys().map(|k| k.to_ascii_lowercase()).collect();
            keys.sort();
            let n = keys.len();
            keys.dedup();
            keys.len() == n && m.values().all(plain)
        }
        Value::Array(a) => a.iter().all(plain),
        _ => true,
    }
}

/// The lenient invariants for one shape and its typed request:
/// * never a panic;
/// * normalisation only renames keys: on a plain body it keeps every value (the same document, keys folded);
/// * on a body in canonical spelling it accepts what strict serde accepts, with the same result: a body
///   serde_json reads as `T` directly reads as the same `T` leniently (nothing lost or changed by being
///   lenient; on other spellings strict serde ignores the keys lenient reads, so they may differ).
fn lenient<T>(input: &[u8], shape: &Shape)
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    let lenient: Result<T, _> = parse_body(input, shape);
    let _ = parse_body::<Value>(input, shape);
    if let Ok(v @ Value::Object(_)) = serde_json::from_slice::<Value>(input) {
        if plain(&v) {
            let n = normalize(v.clone(), shape);
            assert_eq!(fold_keys(&n), fold_keys(&v), "normalisation changed data");
        }
        // On a body already in canonical spelling (normalisation renames nothing), lenient = strict.
        if let Ok(strict) = serde_json::from_slice::<T>(input)
            && plain(&v)
            && normalize(v.clone(), shape) == v
        {
            match &lenient {
                Ok(got) => assert_eq!(got, &strict, "lenient and strict differ"),
                Err(e) => panic!("strict serde accepts, lenient refuses: {e}"),
            }
        }
    }
}

#[test]
fn fuzz_lenient_function() {
    fuzz("lenient_function", JSON_DICT, |input| {
        lenient::<FunctionFields>(input, &FUNCTION_SHAPE);
        if let Ok(req) = parse_function_request(input) {
            let _ = req.fields.validate();
        }
    });
}

#[test]
fn fuzz_lenient_service() {
    fuzz("lenient_service", JSON_DICT, |input| {
        lenient::<ServiceFields>(input, &SERVICE_SHAPE);
        if let Ok(fields) = parse_body::<ServiceFields>(input, &SERVICE_SHAPE) {
            let _ = fields.validate();
        }
    });
}

/// Zip validation with small limits: never a panic; an accepted package has no entry that leaves the
/// package directory, is absolute or a symlink, and stays within the entry and size limits.
#[test]
fn fuzz_zip() {
    let limits = PackageLimits { max_size: 1 << 20, max_entries: 64, max_unzipped: 1 << 20 };
    fuzz("zip", &[b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"../", b"/", b"\\", b"\xff\xff\xff\xff"], |input| {
        let Ok(package) = inspect(Bytes::copy_from_slice(input), &limits) else { return };
        assert_eq!(package.code.size, input.len() as u64);
        let mut archive = zip::ZipArchive::new(Cursor::new(input)).expect("accepted, so readable");
        assert!(archive.len() <= limits.max_entries);
        let mut total = 0u64;
        for i in 0..archive.len() {
            let entry = archive.by_index_raw(i).expect("accepted, so every entry is readable");
            let name = entry.name().map(|n| n.into_owned()).unwrap_or_default();
            let enclosed = entry.enclosed_name().expect("accepted entries stay inside");
            assert!(!enclosed.is_absolute() && !name.starts_with('/') && !name.starts_with('\\'), "{name:?}");
            assert!(!enclosed.components().any(|c| matches!(c, std::path::Component::ParentDir)), "{name:?}");
            assert!(!entry.is_symlink(), "{name:?} is a symlink");
            total += entry.size();
        }
        assert!(total <= limits.max_unzipped);
    });
}

/// `code.zipFile`: never a panic, never more than the limit decoded.
#[test]
fn fuzz_zip_base64() {
    fuzz("zip_base64", &[b"=", b"\n", b" ", b"+", b"/", b"AAAA"], |input| {
        let text = String::from_utf8_lossy(input);
        for max in [0u64, 3, 64, 1 << 16] {
            if let Ok(bytes) = decode_zip_file(&text, max) {
                assert!(bytes.len() as u64 <= max);
            }
        }
    });
}

/// Cron and `@every`: validation and parsing never panic; what validation accepts, the scheduler parses,
/// and its next tick is after the time asked (for a year of start times).
#[test]
fn fuzz_cron() {
    let dict: &[&[u8]] = &[
        b"@every ", b"CRON_TZ=", b"Asia/Shanghai ", b"Etc/GMT+8 ", b"*", b"/", b",", b"-", b"?", b"L", b"W", b"#",
        b"MON-FRI", b"JAN", b"59", b"99999999999999999999", b"h", b"m", b"s", b" ",
    ];
    fuzz("cron", dict, |input| {
        let expr = String::from_utf8_lossy(input);
        let _ = every_duration(&expr);
        let valid = validate_cron(&expr).is_ok();
        match parse_schedule(&expr, Duration::ZERO) {
            Ok(schedule) => {
                // What validation accepts fires (it refuses days that never come).
                if valid {
                    assert!(schedule.next_after(1_765_000_000_000).is_some(), "{expr:?} validated but never fires");
                }
                for after in [0i64, 1_700_000_000_000, 4_102_444_800_000] {
                    if let Some(next) = schedule.next_after(after) {
                        assert!(next > after, "{expr:?}: next {next} not after {after}");
                    }
                }
                if let Schedule::Every(d) = schedule {
                    assert!(!d.is_zero());
                }
            }
            Err(e) => assert!(!valid, "{expr:?} validated but the scheduler refuses it: {e}"),
        }
    });
}
