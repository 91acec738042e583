//! `CodeStore` on object_store: a local folder (the embedded default) or an S3-compatible bucket.
//! Objects are opaque, content-addressed code packages; this crate knows nothing about functions.
//! `read_external` reads the user's own objects (`code.ossBucketName/ossObjectName`): in local mode a
//! bucket is the folder `<oss root>/<bucket>`, in S3 mode a bucket at the same endpoint.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use openfc_core::ports::{BlobError, BlobRead, CodeStore};

/// Parts of a multipart upload (S3's minimum is 5 MiB).
const PART: usize = 8 << 20;

/// Local files are streamed in chunks this large (object_store's own 8 KiB chunks cap throughput).
const FILE_CHUNK: u64 = 1 << 20;

/// Settings of an S3-compatible endpoint.
#[derive(Debug, Clone)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl S3Settings {
    fn store(&self, bucket: &str) -> Result<AmazonS3, BlobError> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(&self.region)
            .with_retry(RetryConfig { max_retries: 3, retry_timeout: Duration::from_secs(30), ..Default::default() });
        if let Some(endpoint) = &self.endpoint {
            b = b.with_endpoint(endpoint).with_allow_http(true).with_virtual_hosted_style_request(false);
        }
        if let (Some(id), Some(secret)) = (&self.access_key_id, &self.secret_access_key) {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
        }
        b.build().map_err(backend)
    }
}

enum External {
    Folder(PathBuf),
    /// `own` is openfc's package bucket: never readable as a user's "OSS" bucket (openfc's credentials reach
    /// it, and a function's code must not be taken from another account's packages).
    S3 { settings: S3Settings, own: String, buckets: Mutex<HashMap<String, Arc<AmazonS3>>> },
}

pub struct ObjectCodeStore {
    store: Arc<dyn ObjectStore>,
    external: External,
}

fn backend(e: impl std::fmt::Display) -> BlobError {
    BlobError::Backend(e.to_string())
}

fn map_err(e: object_store::Error) -> BlobError {
    match e {
        object_store::Error::NotFound { .. } => BlobError::NotFound,
        other => backend(other),
    }
}

impl ObjectCodeStore {
    /// Packages under `root`, user buckets under `oss_root/<bucket>`.
    pub fn local(root: PathBuf, oss_root: PathBuf) -> Result<Self, BlobError> {
        std::fs::create_dir_all(&root).map_err(backend)?;
        let store = LocalFileSystem::new_with_prefix(&root).map_err(map_err)?;
        Ok(ObjectCodeStore { store: Arc::new(store), external: External::Folder(oss_root) })
    }

    /// Packages in `bucket` of an S3-compatible endpoint; user buckets on the same endpoint.
    pub fn s3(bucket: &str, settings: S3Settings) -> Result<Self, BlobError> {
        let store = settings.store(bucket)?;
        Ok(ObjectCodeStore {
            store: Arc::new(store),
            external: External::S3 { settings, own: bucket.to_owned(), buckets: Mutex::new(HashMap::new()) },
        })
    }

    fn bucket_store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, BlobError> {
        match &self.external {
            External::Folder(root) => {
                let dir = root.join(bucket);
                if !dir.is_dir() {
                    return Err(BlobError::NotFound);
                }
                Ok(Arc::new(LocalFileSystem::new_with_prefix(dir).map_err(map_err)?))
            }
            External::S3 { own, .. } if own == bucket => Err(BlobError::NotFound),
            External::S3 { settings, buckets, .. } => {
                let mut map = buckets.lock().map_err(backend)?;
                if let Some(s) = map.get(bucket) {
                    return Ok(s.clone());
                }
                let s = Arc::new(settings.store(bucket)?);
                map.insert(bucket.to_owned(), s.clone());
                Ok(s)
            }
        }
    }
}

/// A user-supplied bucket or object name: no traversal, no empty segments.
fn safe_name(name: &str) -> Result<Path, BlobError> {
    let ok = !name.is_empty() && name.split('/').all(|s| !s.is_empty() && s != "." && s != "..");
    if !ok {
        return Err(BlobError::NotFound);
    }
    Path::parse(name).map_err(|_| BlobError::NotFound)
}

fn file_stream(
    file: std::fs::File,
    range: Range<u64>,
) -> futures::stream::BoxStream<'static, Result<Bytes, BlobError>> {
    futures::stream::try_unfold((Some(file), range.start, range.end), |(file, pos, end)| async move {
        let Some(mut file) = file else { return Ok(None) };
        if pos >= end {
            return Ok(None);
        }
        let (file, chunk) = tokio::task::spawn_blocking(move || {
            let want = (end - pos).min(FILE_CHUNK) as usize;
            let mut buf = vec![0u8; want];
            file.seek(SeekFrom::Start(pos))?;
            file.read_exact(&mut buf)?;
            Ok::<_, std::io::Error>((file, Bytes::from(buf)))
        })
        .await
        .map_err(backend)?
        .map_err(backend)?;
        let next = pos + chunk.len() as u64;
        Ok(Some((chunk, (Some(file), next, end))))
    })
    .boxed()
}

#[async_trait]
impl CodeStore for ObjectCodeStore {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), BlobError> {
        self.store.put(&Path::from(key), PutPayload::from_bytes(data)).await.map(|_| ()).map_err(map_err)
    }

    async fn put_file(&self, key: &str, path: &std::path::Path) -> Result<(), BlobError> {
        use tokio::io::AsyncReadExt;
        let mut file = tokio::fs::File::open(path).await.map_err(backend)?;
        let upload = self.store.put_multipart(&Path::from(key)).await.map_err(map_err)?;
        let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0u8; FILE_CHUNK as usize];
        loop {
            let n = match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(backend(e));
                }
            };
            // At most two parts in flight: memory stays a few parts whatever the file's size.
            writer.wait_for_capacity(2).await.map_err(map_err)?;
            writer.write(&buf[..n]);
        }
        writer.finish().await.map(|_| ()).map_err(map_err)
    }

    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        match self.store.head(&Path::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<BlobRead, BlobError> {
        if let Some(r) = &range
            && r.start >= r.end
        {
            return Err(BlobError::BadRange);
        }
        let opts = GetOptions { range: range.map(GetRange::Bounded), ..Default::default() };
        let result = self.store.get_opts(&Path::from(key), opts).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => BlobError::NotFound,
            other => backend(other),
        })?;
        let size = result.meta.size;
        let range = result.range.clone();
        let stream = match result.payload {
            GetResultPayload::File(file, _) => file_stream(file, range.clone()),
            GetResultPayload::Stream(s) => s.map_err(map_err).boxed(),
        };
        Ok(BlobRead { size, range, stream })
    }

    async fn size(&self, key: &str) -> Result<u64, BlobError> {
        self.store.head(&Path::from(key)).await.map(|m| m.size).map_err(map_err)
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.store.delete(&Path::from(key)).await.map_err(map_err)
    }

    async fn read_external(&self, bucket: &str, object: &str, max: u64) -> Result<Bytes, BlobError> {
        safe_name(bucket)?;
        let path = safe_name(object)?;
        let store = self.bucket_store(bucket)?;
        let meta = store.head(&path).await.map_err(map_err)?;
        if meta.size > max {
            return Err(BlobError::TooLarge(max));
        }
        store.get(&path).await.map_err(map_err)?.bytes().await.map_err(map_err)
    }
}

#[cfg(test)]
mod tests;
