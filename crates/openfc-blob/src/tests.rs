//! One conformance suite for every `CodeStore` backend: the local folder always, S3 when
//! `OPENFC_TEST_S3_ENDPOINT` names an S3-compatible server (required when `OPENFC_REQUIRE_EXTERNAL=1`).

use super::*;

async fn read_all(store: &dyn CodeStore, key: &str, range: Option<Range<u64>>) -> Result<(u64, Vec<u8>), BlobError> {
    let read = store.get(key, range).await?;
    let chunks: Vec<Bytes> = read.stream.try_collect().await?;
    Ok((read.size, chunks.concat()))
}

async fn conformance(store: &dyn CodeStore, external: impl Fn(&str, &str, &[u8])) {
    let key = "packages/sha256/abc.zip";
    let data: Vec<u8> = (0..(3 * FILE_CHUNK as usize + 17)).map(|i| (i % 251) as u8).collect();
    assert!(!store.exists(key).await.unwrap());
    assert_eq!(store.get(key, None).await.err(), Some(BlobError::NotFound));
    store.put(key, Bytes::from(data.clone())).await.unwrap();
    assert!(store.exists(key).await.unwrap());
    assert_eq!(store.size(key).await.unwrap(), data.len() as u64);
    assert_eq!(read_all(store, key, None).await.unwrap(), (data.len() as u64, data.clone()));
    let (size, part) = read_all(store, key, Some(10..20)).await.unwrap();
    assert_eq!((size, part.as_slice()), (data.len() as u64, &data[10..20]));
    let tail = FILE_CHUNK - 5..FILE_CHUNK * 2 + 5;
    let (_, part) = read_all(store, key, Some(tail.clone())).await.unwrap();
    assert_eq!(part.as_slice(), &data[tail.start as usize..tail.end as usize]);
    assert_eq!(store.get(key, Some(5..5)).await.err(), Some(BlobError::BadRange));
    store.delete(key).await.unwrap();
    assert!(!store.exists(key).await.unwrap());

    // A file larger than two multipart parts, streamed in.
    let big: Vec<u8> = (0..(2 * PART + 12_345)).map(|i| (i % 253) as u8).collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("layer");
    std::fs::write(&file, &big).unwrap();
    let layer_key = "images/blobs/sha256/layer";
    store.put_file(layer_key, &file).await.unwrap();
    assert_eq!(read_all(store, layer_key, None).await.unwrap(), (big.len() as u64, big));
    store.delete(layer_key).await.unwrap();
    assert!(store.put_file(layer_key, &dir.path().join("missing")).await.is_err());

    external("bucket-a", "dir/obj.zip", b"zip-bytes");
    assert_eq!(store.read_external("bucket-a", "dir/obj.zip", 100).await.unwrap(), Bytes::from_static(b"zip-bytes"));
    assert_eq!(store.read_external("bucket-a", "dir/obj.zip", 3).await.err(), Some(BlobError::TooLarge(3)));
    assert_eq!(store.read_external("bucket-a", "missing", 100).await.err(), Some(BlobError::NotFound));
    assert_eq!(store.read_external("bucket-a", "../x", 100).await.err(), Some(BlobError::NotFound));
    assert_eq!(store.read_external("nobucket", "dir/obj.zip", 100).await.err(), Some(BlobError::NotFound));
}

#[tokio::test]
async fn local_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let oss = dir.path().join("oss");
    let store = ObjectCodeStore::local(dir.path().join("code"), oss.clone()).unwrap();
    conformance(&store, |bucket, object, bytes| {
        let path = oss.join(bucket).join(object);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    })
    .await;
}

/// Creates a bucket with a plain PUT (moto accepts unsigned requests).
fn http_put(endpoint: &str, path: &str, body: &[u8]) {
    use std::io::Write;
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
        .unwrap();
    s.write_all(body).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "PUT {path}: {reply}");
}

#[tokio::test]
async fn s3_store_conforms() {
    let Ok(endpoint) = std::env::var("OPENFC_TEST_S3_ENDPOINT") else {
        assert!(std::env::var("OPENFC_REQUIRE_EXTERNAL").is_err(), "OPENFC_TEST_S3_ENDPOINT is required");
        eprintln!("skipped: OPENFC_TEST_S3_ENDPOINT not set");
        return;
    };
    let bucket = format!("conf-{}", std::process::id());
    http_put(&endpoint, &format!("/{bucket}"), b"");
    let settings = S3Settings {
        endpoint: Some(endpoint.clone()),
        region: "us-east-1".into(),
        access_key_id: Some("testing".into()),
        secret_access_key: Some("testing".into()),
    };
    let store = ObjectCodeStore::s3(&bucket, settings).unwrap();
    // openfc's own package bucket is not a user bucket, though its credentials reach it.
    http_put(&endpoint, &format!("/{bucket}/sha256/pkg.zip"), b"someone's package");
    assert_eq!(store.read_external(&bucket, "sha256/pkg.zip", 100).await.err(), Some(BlobError::NotFound));
    let ep = endpoint.clone();
    conformance(&store, move |b, object, bytes| {
        http_put(&ep, &format!("/{b}"), b"");
        http_put(&ep, &format!("/{b}/{object}"), bytes);
    })
    .await;
}
