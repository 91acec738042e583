//! Core's invocation use case with a fake invoker: what every entry point (InvokeFunction, HTTP triggers,
//! provisioning, and later async workers and timers) hands the invoker — FC defaults applied once, the
//! qualifier followed, the spec rebuilt after an update and shared until then — without starting a binary.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use openfc_core::CoreError;
use openfc_core::invocation::InvokeRequest;
use openfc_core::names::{FunctionName, Qualifier, ServiceName};

mod common;

fn zip() -> String {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file("index.py", zip::write::SimpleFileOptions::default()).unwrap();
    w.write_all(b"def handler(e, c): return e").unwrap();
    base64::engine::general_purpose::STANDARD.encode(w.finish().unwrap().into_inner())
}

fn event(body: &'static [u8]) -> InvokeRequest {
    InvokeRequest { request_id: "r".into(), http: None, want_log: false, event: Bytes::from_static(body) }
}

#[tokio::test]
async fn specs_carry_fc_defaults_follow_the_qualifier_and_change_with_the_function() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(common::FakeInvoker::default());
    let (fc, _) = common::core(dir.path(), Duration::from_secs(600), fake.clone()).await;
    fc.create_service("1", br#"{"serviceName":"s","internetAccess":false}"#).await.unwrap();
    let body = format!(r#"{{"functionName":"f","runtime":"python3.10","handler":"index.handler","code":{{"zipFile":"{}"}}}}"#, zip());
    fc.create_function("1", &ServiceName::parse("s").unwrap(), Bytes::from(body), None).await.unwrap();
    let (s, f) = (ServiceName::parse("s").unwrap(), FunctionName::parse("f").unwrap());

    let p = fc.prepare("1", &s, &f, &Qualifier::Latest).await.unwrap();
    let out = fc.invoke(&p, event(b"hi")).await.unwrap();
    assert_eq!(&out.body[..], b"hi");
    let spec = fake.calls.lock().unwrap()[0].0.clone();
    // FC's defaults (spec §5.3), applied in one place.
    assert_eq!((spec.memory_mb, spec.timeout_secs, spec.instance_concurrency, spec.ca_port), (128, 3, 1, 9000));
    assert_eq!((spec.initialization_timeout_secs, spec.internet_access), (3, false));
    assert_eq!((spec.qualifier.as_str(), spec.version_id.as_str(), p.version_label().as_str()), ("LATEST", "", "LATEST"));
    assert_eq!(spec.account_id, "1");

    // The same function state shares one spec; an update makes a new one with a new key.
    let again = fc.prepare("1", &s, &f, &Qualifier::Latest).await.unwrap();
    assert!(Arc::ptr_eq(&p.spec, &again.spec));
    fc.update_function("1", &s, &f, None, Bytes::from_static(br#"{"memorySize":512,"timeout":30}"#), None).await.unwrap();
    let updated = fc.prepare("1", &s, &f, &Qualifier::Latest).await.unwrap();
    assert_ne!(updated.spec.key, p.spec.key);
    assert_eq!((updated.spec.memory_mb, updated.spec.timeout_secs), (512, 30));

    // A published version runs its snapshot, reached through an alias too.
    let version = fc.publish_version("1", &s, None, br#"{}"#).await.unwrap().version_id.to_string();
    fc.update_function("1", &s, &f, None, Bytes::from_static(br#"{"memorySize":1024}"#), None).await.unwrap();
    fc.create_alias("1", &s, format!(r#"{{"aliasName":"prod","versionId":"{version}"}}"#).as_bytes()).await.unwrap();
    let prod = fc.prepare("1", &s, &f, &Qualifier::parse("prod").unwrap()).await.unwrap();
    assert_eq!((prod.spec.memory_mb, prod.spec.version_id.as_str(), prod.spec.qualifier.as_str()), (512, version.as_str(), "prod"));
    assert_eq!(fc.prepare("1", &s, &f, &Qualifier::Latest).await.unwrap().spec.memory_mb, 1024);
}

#[tokio::test]
async fn what_cannot_run_is_refused_before_the_invoker_is_called() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(common::FakeInvoker::default());
    let (fc, _) = common::core(dir.path(), Duration::from_secs(600), fake.clone()).await;
    fc.create_service("1", br#"{"serviceName":"s"}"#).await.unwrap();
    let s = ServiceName::parse("s").unwrap();
    let body = format!(r#"{{"functionName":"u","runtime":"java11","handler":"h","code":{{"zipFile":"{}"}}}}"#, zip());
    // The control plane accepts any FC runtime; invoking one the invoker lacks is refused by its check.
    fc.create_function("1", &s, Bytes::from(body), None).await.unwrap();
    let err = fc.prepare("1", &s, &FunctionName::parse("u").unwrap(), &Qualifier::Latest).await.err().unwrap();
    assert!(matches!(err, CoreError::InvalidArgument(ref m) if m.contains("java11")), "{err:?}");
    let missing = fc.prepare("1", &s, &FunctionName::parse("nope").unwrap(), &Qualifier::Latest).await.err().unwrap();
    assert!(matches!(missing, CoreError::FunctionNotFound { .. }), "{missing:?}");
    assert!(fake.calls.lock().unwrap().is_empty());
}
