//! The ports the core needs, implemented by backends: metadata (`MetaStore`), code packages (`CodeStore`)
//! and time (`Clock`). Errors crossing these seams are small and semantic; each backend converts its own.

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::page::PageQuery;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    /// A conditional write lost: the stored ETag (or state) is not the expected one.
    #[error("precondition failed")]
    PreconditionFailed,
    /// A referential rule refused the write (e.g. the parent is gone or children remain).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("backend: {0}")]
    Backend(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub id: String,
    pub created_time: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Inactive,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "Active",
            KeyStatus::Inactive => "Inactive",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Active" => Some(KeyStatus::Active),
            "Inactive" => Some(KeyStatus::Inactive),
            _ => None,
        }
    }
}

/// An AccessKey as stored: the secret is sealed by the server's master key, never plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyRecord {
    pub id: String,
    pub account_id: String,
    pub sealed_secret: String,
    pub status: KeyStatus,
    pub created_time: String,
    /// A RAM-style policy document (`policy::Policy`); `None`: the account's root key, allowed everything.
    pub policy: Option<String>,
}

/// A stored resource: identity, its JSON configuration, and bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRecord {
    pub account_id: String,
    pub name: String,
    pub id: String,
    pub config: serde_json::Value,
    pub etag: String,
    pub created_time: String,
    pub modified_time: String,
}

/// Where a function's code package lives, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRef {
    pub key: String,
    pub checksum: u64,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionRecord {
    pub account_id: String,
    pub service_name: String,
    pub name: String,
    pub id: String,
    pub config: serde_json::Value,
    pub code: Option<CodeRef>,
    pub etag: String,
    pub created_time: String,
    pub modified_time: String,
}

/// An immutable snapshot of a service (its functions live beside it, read per function).
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRecord {
    pub account_id: String,
    pub service_name: String,
    pub version_id: u64,
    pub description: String,
    pub service_config: serde_json::Value,
    pub created_time: String,
    pub modified_time: String,
}

/// A resource that is one JSON document under a key (aliases, triggers, configs, tags...).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub account_id: String,
    pub kind: &'static str,
    pub key: String,
    pub body: serde_json::Value,
    pub etag: String,
    pub created_time: String,
    pub modified_time: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LayerVersionRecord {
    pub account_id: String,
    pub layer_name: String,
    pub version: u64,
    /// description, compatibleRuntime, license
    pub body: serde_json::Value,
    pub code: CodeRef,
    /// 0 private, 1 public (a property of the layer, shared by its versions)
    pub acl: i64,
    pub created_time: String,
}

/// What `touch_package` found: the package row is live (and its grace period renewed), or a collector
/// is deleting it right now and the caller must wait and try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchOutcome {
    Live,
    BeingDeleted,
}

#[async_trait]
pub trait MetaStore: Send + Sync {
    /// Creates the first account with its root key; `AlreadyExists` when another process won that race.
    async fn create_first_account(&self, account: &AccountRecord, root_key: &AccessKeyRecord) -> Result<(), MetaError>;
    /// The oldest account, if any (the embedded single-tenant default).
    async fn first_account(&self) -> Result<Option<AccountRecord>, MetaError>;
    /// Another account, with its root key.
    async fn create_account(&self, account: &AccountRecord, root_key: &AccessKeyRecord) -> Result<(), MetaError>;
    /// Every account, oldest first.
    async fn list_accounts(&self) -> Result<Vec<AccountRecord>, MetaError>;
    /// Deletes an account and its keys; `Conflict` while it has services, layers or custom domains.
    async fn delete_account(&self, id: &str) -> Result<(), MetaError>;

    async fn put_access_key(&self, key: &AccessKeyRecord) -> Result<(), MetaError>;
    async fn get_access_key(&self, id: &str) -> Result<AccessKeyRecord, MetaError>;
    async fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>, MetaError>;
    async fn set_access_key_status(&self, id: &str, status: KeyStatus) -> Result<(), MetaError>;
    async fn delete_access_key(&self, id: &str) -> Result<(), MetaError>;

    async fn create_service(&self, rec: &ServiceRecord) -> Result<(), MetaError>;
    async fn get_service(&self, account: &str, name: &str) -> Result<ServiceRecord, MetaError>;
    /// Replaces the service if its stored ETag is still `expected_etag`.
    async fn update_service(&self, rec: &ServiceRecord, expected_etag: &str) -> Result<(), MetaError>;
    /// Deletes the service if it has no functions (`Conflict` otherwise) and, when given, its ETag matches.
    async fn delete_service(&self, account: &str, name: &str, if_match: Option<&str>) -> Result<(), MetaError>;
    /// Up to `page.limit + 1` services in name order.
    async fn list_services(&self, account: &str, page: &PageQuery) -> Result<Vec<ServiceRecord>, MetaError>;
    async fn count_functions(&self, account: &str, service: &str) -> Result<u64, MetaError>;

    /// Creates the function; `NotFound` if the service is gone, `AlreadyExists` on a duplicate name.
    async fn create_function(&self, rec: &FunctionRecord) -> Result<(), MetaError>;
    async fn get_function(&self, account: &str, service: &str, name: &str) -> Result<FunctionRecord, MetaError>;
    async fn update_function(&self, rec: &FunctionRecord, expected_etag: &str) -> Result<(), MetaError>;
    async fn delete_function(
        &self,
        account: &str,
        service: &str,
        name: &str,
        if_match: Option<&str>,
    ) -> Result<(), MetaError>;
    async fn list_functions(
        &self,
        account: &str,
        service: &str,
        page: &PageQuery,
    ) -> Result<Vec<FunctionRecord>, MetaError>;

    /// Snapshots the service and all its functions as the next version, in one transaction, unless nothing
    /// changed since the newest existing version (`Conflict("unchanged")`). `PreconditionFailed` when
    /// `if_match` is given and is not the service's ETag.
    async fn publish_version(
        &self,
        account: &str,
        service: &str,
        description: &str,
        if_match: Option<&str>,
        now: &str,
    ) -> Result<VersionRecord, MetaError>;
    async fn get_version(&self, account: &str, service: &str, id: u64) -> Result<VersionRecord, MetaError>;
    /// Up to `limit + 1` versions from `start` (inclusive) in the given direction.
    async fn list_versions(
        &self,
        account: &str,
        service: &str,
        forward: bool,
        start: Option<u64>,
        limit: usize,
    ) -> Result<Vec<VersionRecord>, MetaError>;
    async fn delete_version(&self, account: &str, service: &str, id: u64) -> Result<(), MetaError>;
    async fn count_versions(&self, account: &str, service: &str) -> Result<u64, MetaError>;
    async fn get_version_function(
        &self,
        account: &str,
        service: &str,
        id: u64,
        name: &str,
    ) -> Result<FunctionRecord, MetaError>;
    async fn list_version_functions(
        &self,
        account: &str,
        service: &str,
        id: u64,
        page: &PageQuery,
    ) -> Result<Vec<FunctionRecord>, MetaError>;

    async fn create_doc(&self, doc: &Document) -> Result<(), MetaError>;
    async fn get_doc(&self, account: &str, kind: &'static str, key: &str) -> Result<Document, MetaError>;
    async fn update_doc(&self, doc: &Document, expected_etag: &str) -> Result<(), MetaError>;
    /// Creates or replaces; a replacement keeps the stored `created_time`. Returns the stored document.
    async fn put_doc(&self, doc: &Document) -> Result<Document, MetaError>;
    async fn delete_doc(
        &self,
        account: &str,
        kind: &'static str,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<(), MetaError>;
    /// Up to `limit + 1` documents whose key starts with `prefix`, from `start` (inclusive), in key order.
    async fn list_docs(
        &self,
        account: &str,
        kind: &'static str,
        prefix: &str,
        start: &str,
        limit: usize,
    ) -> Result<Vec<Document>, MetaError>;

    /// Adds the next version of a layer (creating the layer on its first version).
    async fn create_layer_version(
        &self,
        account: &str,
        name: &str,
        body: &serde_json::Value,
        code: &CodeRef,
        now: &str,
    ) -> Result<LayerVersionRecord, MetaError>;
    async fn get_layer_version(&self, account: &str, name: &str, version: u64) -> Result<LayerVersionRecord, MetaError>;
    /// Up to `limit + 1` versions of one layer from `start_version` (inclusive), ascending.
    async fn list_layer_versions(
        &self,
        account: &str,
        name: &str,
        start_version: u64,
        limit: usize,
    ) -> Result<Vec<LayerVersionRecord>, MetaError>;
    /// The newest version of each layer, up to `limit + 1` layers by name, as `list_services` pages.
    async fn list_latest_layers(&self, account: &str, page: &PageQuery) -> Result<Vec<LayerVersionRecord>, MetaError>;
    async fn delete_layer_version(&self, account: &str, name: &str, version: u64) -> Result<(), MetaError>;
    async fn set_layer_acl(&self, account: &str, name: &str, acl: i64) -> Result<(), MetaError>;

    /// Records that a package is about to be (or is) referenced, renewing its grace period to `now`.
    async fn touch_package(&self, code: &CodeRef, now: i64) -> Result<TouchOutcome, MetaError>;
    /// Marks up to `limit` packages that no function references and nobody touched since `cutoff` as being
    /// deleted, and returns their keys. Safe to run from several processes at once.
    async fn claim_garbage(&self, cutoff: i64, now: i64, limit: usize) -> Result<Vec<String>, MetaError>;
    /// Forgets a package whose object has been deleted.
    async fn forget_package(&self, key: &str) -> Result<(), MetaError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    #[error("object not found")]
    NotFound,
    #[error("object is larger than {0} bytes")]
    TooLarge(u64),
    #[error("range not satisfiable")]
    BadRange,
    #[error("{0}")]
    Backend(String),
}

/// A stored object being read: its total size, the byte range served, and the bytes.
pub struct BlobRead {
    pub size: u64,
    pub range: Range<u64>,
    pub stream: BoxStream<'static, Result<Bytes, BlobError>>,
}

#[async_trait]
pub trait CodeStore: Send + Sync {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), BlobError>;
    /// Stores a local file as `key`, streamed in parts (never the whole file in memory: image layers).
    async fn put_file(&self, key: &str, path: &std::path::Path) -> Result<(), BlobError>;
    async fn exists(&self, key: &str) -> Result<bool, BlobError>;
    /// Streams the object, or the given byte range of it (`end` exclusive, clamped to the size).
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<BlobRead, BlobError>;
    async fn size(&self, key: &str) -> Result<u64, BlobError>;
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// Reads a user's object named by `code.ossBucketName`/`ossObjectName`, refusing more than `max` bytes.
    async fn read_external(&self, bucket: &str, object: &str, max: u64) -> Result<Bytes, BlobError>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> time::OffsetDateTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
    }
}
