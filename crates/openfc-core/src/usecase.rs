//! The use cases behind each FC operation, on top of the ports. Handlers call these with validated
//! names and the raw body; everything FC-specific about the resources is decided here.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::cache::HotCache;
use crate::versions::Resolved;
use crate::code::{self, Package, PackageLimits};
use crate::error::{CoreError, CoreResult};
use crate::function::{CodeSource, FunctionFields};
use crate::names::{FunctionName, Qualifier, ServiceName};
use crate::page::PageQuery;
use crate::ports::{
    Clock, CodeRef, CodeStore, FunctionRecord, MetaError, MetaStore, TouchOutcome,
};

/// How often an unconditional update is retried when a concurrent writer got there first.
pub(crate) const UPDATE_ATTEMPTS: usize = 8;

pub struct Fc {
    pub meta: Arc<dyn MetaStore>,
    pub code: Arc<dyn CodeStore>,
    pub clock: Arc<dyn Clock>,
    pub limits: PackageLimits,
    /// Unreferenced packages younger than this are never collected (uploads in flight reference them soon).
    pub gc_grace: Duration,
    /// Region used in ARNs.
    pub region: String,
    /// What the hot read paths last saw; see `cache`.
    pub hot: HotCache,
    /// What runs functions (see `invocation`).
    pub invoker: Arc<dyn crate::invocation::Invoker>,
    /// The durable async queue and this node's workers' settings (see `asyncq`); `None`: async invocations
    /// are refused.
    pub events: Option<Arc<crate::asyncq::Events>>,
    /// Custom-container image pulls (see `images`); `None`: container functions cannot run.
    pub images: Option<Arc<crate::images::Images>>,
    /// The other nodes sharing the database (see `cluster`).
    pub cluster: Arc<crate::cluster::Cluster>,
}

/// (account, service, function)
pub type FunctionKey = (String, String, String);

fn function_key(account: &str, service: &ServiceName, name: &FunctionName) -> FunctionKey {
    (account.to_owned(), service.to_string(), name.to_string())
}

fn function_change(account: &str, service: &ServiceName, name: &FunctionName) -> crate::cluster::Change {
    crate::cluster::Change::Function { account: account.to_owned(), service: service.to_string(), function: name.to_string() }
}

impl Fc {
    /// After a write committed: drops what it made stale from this node's caches, then tells the other nodes.
    pub(crate) async fn changed(&self, change: crate::cluster::Change) {
        self.hot.apply(&change);
        self.cluster.publish(&change).await;
    }
}

pub(crate) fn new_etag() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `If-Match` values may arrive quoted.
pub(crate) fn etag_matches(if_match: Option<&str>, etag: &str) -> bool {
    if_match.is_none_or(|m| m.trim().trim_matches('"') == etag || m.trim() == "*")
}

pub(crate) fn to_config<T: serde::Serialize>(fields: &T) -> CoreResult<Value> {
    serde_json::to_value(fields).map_err(|e| CoreError::Internal(format!("serialise config: {e}")))
}

pub(crate) fn from_config<T: serde::de::DeserializeOwned>(config: &Value) -> CoreResult<T> {
    serde_json::from_value(config.clone()).map_err(|e| CoreError::Internal(format!("stored config unreadable: {e}")))
}

/// A package named by a request, before or after it is read.
pub(crate) enum PackageInput {
    Ready(Package),
    Oss { bucket: String, object: String },
}

impl Fc {
    /// RFC 3339 UTC with milliseconds, so an update within the same second still changes lastModifiedTime.
    pub fn timestamp(&self) -> String {
        const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        self.clock.now().to_offset(time::UtcOffset::UTC).format(FORMAT).unwrap_or_default()
    }

    pub(crate) fn service_missing(name: &ServiceName) -> impl Fn(MetaError) -> CoreError + '_ {
        move |e| match e {
            MetaError::NotFound => CoreError::ServiceNotFound(name.to_string()),
            other => other.into(),
        }
    }

    pub(crate) fn function_missing<'a>(svc: &'a ServiceName, f: &'a FunctionName) -> impl Fn(MetaError) -> CoreError + 'a {
        move |e| match e {
            MetaError::NotFound => {
                CoreError::FunctionNotFound { service: svc.to_string(), function: f.to_string() }
            }
            other => other.into(),
        }
    }

    pub async fn create_function(
        &self,
        account: &str,
        service: &ServiceName,
        body: Bytes,
        checksum_header: Option<&str>,
    ) -> CoreResult<FunctionRecord> {
        self.meta.get_service(account, service.as_str()).await.map_err(Self::service_missing(service))?;
        let (fields, package) = self.parse_function_body(body).await?;
        let name = FunctionName::parse(
            fields.function_name.as_deref().ok_or_else(|| CoreError::required("FunctionName"))?,
        )?;
        let fields = fields.with_defaults();
        fields.validate()?;
        self.check_layers(account, fields.layers.as_deref().unwrap_or_default()).await?;
        let code = match package {
            Some(input) => Some(self.store_package(input, checksum_header).await?),
            None if fields.is_container() => None,
            None => {
                return Err(CoreError::required_hint(
                    "Code",
                    "Give code.zipFile, or code.ossBucketName and code.ossObjectName.",
                ));
            }
        };
        let now = self.timestamp();
        let mut config = to_config(&fields)?;
        let pull = self.new_pull(account, &fields, &mut config).await?;
        let rec = FunctionRecord {
            account_id: account.to_owned(),
            service_name: service.to_string(),
            name: name.to_string(),
            id: uuid::Uuid::new_v4().to_string(),
            config,
            code,
            etag: new_etag(),
            created_time: now.clone(),
            modified_time: now,
        };
        let result = self.meta.create_function(&rec).await.map_err(|e| match e {
            MetaError::AlreadyExists => {
                CoreError::FunctionAlreadyExists { service: service.to_string(), function: name.to_string() }
            }
            MetaError::NotFound | MetaError::Conflict(_) => CoreError::ServiceNotFound(service.to_string()),
            other => other.into(),
        });
        self.settle_new_pull(pull, result.is_ok()).await;
        result.map(|()| rec)
    }

    /// A container function's configuration gets a new image pull (recorded, not yet started).
    async fn new_pull(
        &self,
        account: &str,
        fields: &FunctionFields,
        config: &mut Value,
    ) -> CoreResult<Option<crate::images::ImagePullRecord>> {
        let (Some(images), Some(ccc)) = (&self.images, fields.custom_container_config.as_ref().filter(|_| fields.is_container())) else {
            return Ok(None);
        };
        let gives_argv = ccc.command_argv()?.is_some() || ccc.args_argv()?.is_some();
        let rec = images.create(account, &ccc.image, gives_argv).await?;
        crate::images::set_pull(config, &rec.id);
        Ok(Some(rec))
    }

    /// Starts the pull once the function naming it is written, or drops it when the write failed.
    async fn settle_new_pull(&self, pull: Option<crate::images::ImagePullRecord>, written: bool) {
        if let (Some(images), Some(pull)) = (&self.images, pull) {
            if written { images.launch(pull).await } else { images.abandon(&pull).await }
        }
    }

    pub async fn get_function(
        &self,
        account: &str,
        service: &ServiceName,
        name: &FunctionName,
        q: &Qualifier,
    ) -> CoreResult<FunctionRecord> {
        Ok(self.shared_function(account, service, name, q).await?.as_ref().clone())
    }

    /// As `get_function`, shared with the cache (no copy of the configuration: the invoke path uses this).
    pub async fn shared_function(
        &self,
        account: &str,
        service: &ServiceName,
        name: &FunctionName,
        q: &Qualifier,
    ) -> CoreResult<Arc<FunctionRecord>> {
        // A cached snapshot proves the version exists: no read to check it (invocations by version come here).
        if let Qualifier::Version(v) = q
            && let Some(rec) = self.hot.versions.get(&(account.to_owned(), service.to_string(), name.to_string(), *v))
        {
            return Ok(rec);
        }
        if let Resolved::Version(v) = self.resolve(account, service, q).await? {
            let key = (account.to_owned(), service.to_string(), name.to_string(), v);
            if let Some(rec) = self.hot.versions.get(&key) {
                return Ok(rec);
            }
            let since = self.hot.versions.epoch();
            let rec = Arc::new(
                self.meta
                    .get_version_function(account, service.as_str(), v, name.as_str())
                    .await
                    .map_err(Self::function_missing(service, name))?,
            );
            self.hot.versions.put(since, key, rec.clone());
            return Ok(rec);
        }
        let key = function_key(account, service, name);
        if let Some(rec) = self.hot.functions.get(&key) {
            return Ok(rec);
        }
        let since = self.hot.functions.epoch();
        let rec = Arc::new(self.fresh_function(account, service, name).await?);
        self.hot.functions.put(since, key, rec.clone());
        Ok(rec)
    }

    /// The stored function, bypassing the read cache (mutations check ETags against this). One read when
    /// it exists: a function row implies its service (foreign key); only a miss needs the second read that
    /// tells a missing service from a missing function.
    pub(crate) async fn fresh_function(&self, account: &str, service: &ServiceName, name: &FunctionName) -> CoreResult<FunctionRecord> {
        match self.meta.get_function(account, service.as_str(), name.as_str()).await {
            Ok(rec) => Ok(rec),
            Err(MetaError::NotFound) => {
                self.meta.get_service(account, service.as_str()).await.map_err(Self::service_missing(service))?;
                Err(Self::function_missing(service, name)(MetaError::NotFound))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_function_code(
        &self,
        account: &str,
        service: &ServiceName,
        name: &FunctionName,
        q: &Qualifier,
    ) -> CoreResult<CodeRef> {
        let rec = self.get_function(account, service, name, q).await?;
        rec.code.ok_or_else(|| CoreError::invalid(format!("function '{name}' has no code package (custom-container)")))
    }

    pub async fn update_function(
        &self,
        account: &str,
        service: &ServiceName,
        name: &FunctionName,
        if_match: Option<&str>,
        body: Bytes,
        checksum_header: Option<&str>,
    ) -> CoreResult<FunctionRecord> {
        let current = self.fresh_function(account, service, name).await?;
        if !etag_matches(if_match, &current.etag) {
            return Err(CoreError::PreconditionFailed);
        }
        let (patch, package) = self.parse_function_body(body).await?;
        self.check_layers(account, patch.layers.as_deref().unwrap_or_default()).await?;
        if patch.custom_container_config.as_ref().is_some_and(|c| !c.web_server_mode) {
            self.check_no_http_trigger(account, service, name).await?;
        }
        let new_code = match package {
            Some(input) => Some(self.store_package(input, checksum_header).await?),
            None => None,
        };
        // An update carrying customContainerConfig resolves the tag again (containers.md §1.3), even unchanged.
        let repull = patch.custom_container_config.is_some();
        let mut pull: Option<crate::images::ImagePullRecord> = None;
        let result = self.write_function_update(account, service, name, if_match, &patch, new_code.as_ref(), repull, &mut pull).await;
        // A pull recorded for this update starts only if the function that was written names it; any other end
        // (an error, a retry that no longer needed it) drops it.
        let named = match (&result, &pull) {
            (Ok(rec), Some(p)) => crate::images::pull_of(&rec.config) == Some(p.id.as_str()),
            _ => false,
        };
        self.settle_new_pull(pull, named).await;
        result
    }

    /// UpdateFunction's conditional write, retried while concurrent writers win (without If-Match).
    #[allow(clippy::too_many_arguments)]
    async fn write_function_update(
        &self,
        account: &str,
        service: &ServiceName,
        name: &FunctionName,
        if_match: Option<&str>,
        patch: &FunctionFields,
        new_code: Option<&CodeRef>,
        repull: bool,
        pull: &mut Option<crate::images::ImagePullRecord>,
    ) -> CoreResult<FunctionRecord> {
        for _ in 0..UPDATE_ATTEMPTS {
            let mut rec = self
                .meta
                .get_function(account, service.as_str(), name.as_str())
                .await
                .map_err(Self::function_missing(service, name))?;
            if !etag_matches(if_match, &rec.etag) {
                return Err(CoreError::PreconditionFailed);
            }
            let mut fields: FunctionFields = from_config(&rec.config)?;
            fields.apply(patch.clone());
            fields.validate()?;
            if let Some(code) = new_code {
                rec.code = Some(code.clone());
            }
            let expected = std::mem::replace(&mut rec.etag, new_etag());
            let old_pull = crate::images::pull_of(&rec.config).map(str::to_owned);
            rec.config = to_config(&fields)?;
            if fields.is_container() {
                match (pull.as_ref(), old_pull) {
                    (Some(p), _) => crate::images::set_pull(&mut rec.config, &p.id),
                    (None, Some(old)) if !repull => crate::images::set_pull(&mut rec.config, &old),
                    (None, _) => *pull = self.new_pull(account, &fields, &mut rec.config).await?,
                }
            }
            rec.modified_time = self.timestamp();
            let result = self.meta.update_function(&rec, &expected).await;
            self.changed(function_change(account, service, name)).await;
            match result {
                Ok(()) => return Ok(rec),
                Err(MetaError::PreconditionFailed) if if_match.is_none() => continue,
                Err(MetaError::PreconditionFailed) => return Err(CoreError::PreconditionFailed),
                Err(e) => return Err(Self::function_missing(service, name)(e)),
            }
        }
        Err(CoreError::Internal(format!("function '{name}' kept changing during the update")))
    }

    pub async fn delete_function(
        &self,
        account: &str,
        service: &ServiceName,
        name: &FunctionName,
        if_match: Option<&str>,
    ) -> CoreResult<()> {
        let rec = self.fresh_function(account, service, name).await?;
        if !etag_matches(if_match, &rec.etag) {
            return Err(CoreError::PreconditionFailed);
        }
        self.check_no_triggers(account, service, name).await?;
        let result = self.meta.delete_function(account, service.as_str(), name.as_str(), Some(&rec.etag)).await;
        // Its configs went with it (same transaction): the change drops the cached copies too.
        self.changed(function_change(account, service, name)).await;
        match result {
            Ok(()) => {
                self.forget_function_tags(account, service, name).await;
                Ok(())
            }
            Err(MetaError::PreconditionFailed) => Err(CoreError::PreconditionFailed),
            Err(e) => Err(Self::function_missing(service, name)(e)),
        }
    }

    pub async fn list_functions(
        &self,
        account: &str,
        service: &ServiceName,
        q: &Qualifier,
        page: &PageQuery,
    ) -> CoreResult<(Vec<FunctionRecord>, Option<String>)> {
        self.meta.get_service(account, service.as_str()).await.map_err(Self::service_missing(service))?;
        let items = match self.resolve(account, service, q).await? {
            Resolved::Latest => self.meta.list_functions(account, service.as_str(), page).await?,
            Resolved::Version(v) => self.meta.list_version_functions(account, service.as_str(), v, page).await?,
        };
        Ok(page.finish(items, |f| &f.name))
    }

    // ---- code packages ----

    /// Parses a function body off the async runtime: decoding and checking a large package is CPU work.
    async fn parse_function_body(&self, body: Bytes) -> CoreResult<(FunctionFields, Option<PackageInput>)> {
        self.parse_with_package(body, &crate::function::FUNCTION_SHAPE).await
    }

    /// Splits `code` off a body, decodes and checks an inline package, and parses the rest as `T`.
    pub(crate) async fn parse_with_package<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        body: Bytes,
        shape: &'static crate::wire::lenient::Shape,
    ) -> CoreResult<(T, Option<PackageInput>)> {
        let limits = self.limits;
        tokio::task::spawn_blocking(move || {
            let (rest, code) = crate::function::split_code(&body)?;
            let fields = crate::wire::lenient::from_value(rest, shape)?;
            let package = match code {
                None => None,
                Some(CodeSource::Zip(text)) => {
                    let bytes = code::decode_zip_file(&text, limits.max_size)?;
                    Some(PackageInput::Ready(code::inspect(Bytes::from(bytes), &limits)?))
                }
                Some(CodeSource::Oss { bucket, object }) => Some(PackageInput::Oss { bucket, object }),
            };
            Ok((fields, package))
        })
        .await
        .map_err(|e| CoreError::Internal(format!("package task failed: {e}")))?
    }

    /// Stores a package once (content-addressed) after checking it against the client's checksum.
    pub(crate) async fn store_package(&self, input: PackageInput, checksum_header: Option<&str>) -> CoreResult<CodeRef> {
        let package = match input {
            PackageInput::Ready(p) => p,
            PackageInput::Oss { bucket, object } => {
                let bytes = self.code.read_external(&bucket, &object, self.limits.max_size).await.map_err(|e| {
                    match e {
                        crate::ports::BlobError::NotFound => CoreError::invalid(format!(
                            "the code object '{object}' does not exist in bucket '{bucket}'"
                        )),
                        crate::ports::BlobError::TooLarge(max) => CoreError::EntityTooLarge(max),
                        other => other.into(),
                    }
                })?;
                let limits = self.limits;
                tokio::task::spawn_blocking(move || code::inspect(bytes, &limits))
                    .await
                    .map_err(|e| CoreError::Internal(format!("package task failed: {e}")))??
            }
        };
        if let Some(expected) = checksum_header.map(str::trim).filter(|s| !s.is_empty()) {
            let actual = package.code.checksum.to_string();
            if expected != actual {
                return Err(CoreError::invalid(format!(
                    "X-Fc-Code-Checksum '{expected}' does not match the code package's CRC-64 checksum '{actual}'"
                )));
            }
        }
        self.pin_package(&package.code).await?;
        if !self.code.exists(&package.code.key).await? {
            self.code.put(&package.code.key, package.bytes).await?;
        }
        Ok(package.code)
    }

    /// Renews the package's grace period so no collector deletes it before the function row references it.
    async fn pin_package(&self, code: &CodeRef) -> CoreResult<()> {
        for _ in 0..200 {
            match self.meta.touch_package(code, self.clock.now().unix_timestamp()).await? {
                TouchOutcome::Live => return Ok(()),
                TouchOutcome::BeingDeleted => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        Err(CoreError::Internal(format!("package {} stayed in deletion", code.key)))
    }

    /// Deletes packages nothing references any more. Returns how many were deleted.
    pub async fn collect_garbage(&self) -> CoreResult<usize> {
        let now = self.clock.now().unix_timestamp();
        let cutoff = now - self.gc_grace.as_secs() as i64;
        let mut deleted = 0;
        loop {
            let keys = self.meta.claim_garbage(cutoff, now, 100).await?;
            if keys.is_empty() {
                return Ok(deleted);
            }
            for key in keys {
                match self.code.delete(&key).await {
                    Ok(()) | Err(crate::ports::BlobError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
                self.meta.forget_package(&key).await?;
                deleted += 1;
            }
        }
    }
}
