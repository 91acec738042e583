//! Package garbage collection racing creates and updates: a collector running continuously with a short
//! grace period must never delete a package a function references, and must delete the rest once they age.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use openfc_core::code::{PackageLimits, crc64};
use openfc_core::names::{FunctionName, Qualifier, ServiceName};

mod common;

fn zip_with(content: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file("bootstrap", zip::write::SimpleFileOptions::default()).unwrap();
    w.write_all(content).unwrap();
    w.finish().unwrap().into_inner()
}

fn body(name: Option<&str>, zip: &[u8]) -> Bytes {
    let code = base64::engine::general_purpose::STANDARD.encode(zip);
    let v = match name {
        Some(n) => serde_json::json!({"functionName": n, "runtime": "custom", "handler": "h", "code": {"zipFile": code}}),
        None => serde_json::json!({"code": {"zipFile": code}}),
    };
    Bytes::from(v.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_never_deletes_referenced_packages() {
    let dir = tempfile::tempdir().unwrap();
    let grace = Duration::from_secs(1);
    let (fc, code) = common::core(dir.path(), grace, Arc::new(common::FakeInvoker::default())).await;
    fc.create_service("1", br#"{"serviceName":"s"}"#).await.unwrap();
    let svc = ServiceName::parse("s").unwrap();
    // Four phases of four packages each (one per writer), plus one never used.
    let zips: Vec<Vec<u8>> = (0..17u8).map(|i| zip_with(&[i; 64])).collect();

    let done = Arc::new(AtomicBool::new(false));
    let collector = {
        let (fc, done) = (fc.clone(), done.clone());
        tokio::spawn(async move {
            let mut deleted = 0;
            while !done.load(Ordering::Relaxed) {
                deleted += fc.collect_garbage().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            deleted
        })
    };
    let writers: Vec<_> = (0..4usize)
        .map(|w| {
            let (fc, svc, zips) = (fc.clone(), svc.clone(), zips.clone());
            tokio::spawn(async move {
                let name = format!("f{w}");
                fc.create_function("1", &svc, body(Some(&name), &zips[w]), None).await.unwrap();
                let f = FunctionName::parse(&name).unwrap();
                for round in 0..40 {
                    // Writers trade packages within a phase; a finished phase's packages age out.
                    let z = &zips[4 * (round / 10) + (w + round) % 4];
                    fc.update_function("1", &svc, &f, None, body(None, z), None).await.unwrap();
                    if round % 10 == 9 {
                        tokio::time::sleep(Duration::from_millis(1100)).await;
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let deleted_during = collector.await.unwrap();

    let mut referenced = Vec::new();
    for w in 0..4 {
        let f = FunctionName::parse(&format!("f{w}")).unwrap();
        let c = fc.get_function_code("1", &svc, &f, &Qualifier::Latest).await.unwrap();
        assert!(code.exists(&c.key).await.unwrap(), "f{w}'s package {} was collected", c.key);
        let stored = code.get(&c.key, None).await.unwrap();
        assert_eq!(stored.size, c.size);
        referenced.push(c.key);
    }
    assert!(deleted_during > 0, "the collector never deleted anything: the race was not exercised");

    // Once aged, everything unreferenced goes (package 16 was never used).
    tokio::time::sleep(grace + Duration::from_millis(1100)).await;
    fc.collect_garbage().await.unwrap();
    for z in &zips {
        let key = openfc_core::code::inspect(Bytes::from(z.clone()), &PackageLimits::default()).unwrap().code.key;
        assert_eq!(code.exists(&key).await.unwrap(), referenced.contains(&key), "{key} (crc {})", crc64(z));
    }
}
