//! Layers (spec §5.10): versioned code packages shared by functions, stored and validated like function
//! code; ARNs in the V1 (`md5#name#version`) and V2 (`acs:fc:region:account:layers/name/versions/n`) forms.

use bytes::Bytes;
use md5::{Digest, Md5};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{CoreError, CoreResult, meta_err};
use crate::function::RUNTIMES;
use crate::page::PageQuery;
use crate::ports::{LayerVersionRecord, MetaError};
use crate::usecase::Fc;
use crate::wire::lenient::{Field, Shape};

static LAYER_SHAPE: Shape = Shape::Object(&[
    Field("compatibleRuntime", &Shape::Any),
    Field("description", &Shape::Any),
    Field("license", &Shape::Any),
]);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayerBody {
    compatible_runtime: Option<Vec<String>>,
    description: Option<String>,
    license: Option<String>,
}

/// Layer names: a letter or '_' first, then letters, digits, '_' and '-', 1 to 64 characters.
pub fn check_layer_name(name: &str) -> CoreResult<()> {
    crate::names::FunctionName::parse(name)
        .map(|_| ())
        .map_err(|_| CoreError::bad_format("LayerName", &crate::names::name_pattern(64), name))
}

/// The two forms of a layer version's ARN, as messages name them.
pub(crate) const ARN_FORMS: &str =
    "acs:fc:{region}:{accountID}:layers/{layerName}/versions/{version} | {accountHash}#{layerName}#{version}";

fn account_hash(account: &str) -> String {
    hex::encode(Md5::digest(account.as_bytes()))
}

pub fn layer_arn_v1(rec: &LayerVersionRecord) -> String {
    format!("{}#{}#{}", account_hash(&rec.account_id), rec.layer_name, rec.version)
}

pub fn layer_arn_v2(region: &str, rec: &LayerVersionRecord) -> String {
    format!("acs:fc:{region}:{}:layers/{}/versions/{}", rec.account_id, rec.layer_name, rec.version)
}

/// The JSON of a layer version; `location` is a download URL for its package.
pub fn layer_json(region: &str, rec: &LayerVersionRecord, location: &str) -> Value {
    let body = |k: &str| rec.body.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "layerName": rec.layer_name,
        "version": rec.version,
        "description": body("description"),
        "code": {"repositoryType": "OSS", "location": location},
        "codeSize": rec.code.size,
        "codesize": rec.code.size,
        "codeChecksum": rec.code.checksum.to_string(),
        "createTime": rec.created_time,
        "acl": rec.acl,
        "compatibleRuntime": body("compatibleRuntime"),
        "license": body("license"),
        "arn": layer_arn_v1(rec),
        "arnV2": layer_arn_v2(region, rec),
    })
}

/// What a layer ARN names: (account, or the V1 account hash; layer; version).
enum LayerRef {
    V1 { hash: String, name: String, version: u64 },
    V2 { account: String, name: String, version: u64 },
}

fn parse_arn(arn: &str) -> CoreResult<LayerRef> {
    let bad = || CoreError::invalid_value("LayerVersionArn", ARN_FORMS, arn);
    let version = |v: &str| v.parse::<u64>().map_err(|_| bad());
    if let Some(rest) = arn.strip_prefix("acs:fc:") {
        let mut parts = rest.splitn(3, ':');
        let (_region, account, path) = (parts.next(), parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?);
        let path = path.strip_prefix("layers/").ok_or_else(bad)?;
        let (name, v) = path.split_once("/versions/").ok_or_else(bad)?;
        return Ok(LayerRef::V2 { account: account.to_owned(), name: name.to_owned(), version: version(v)? });
    }
    let parts: Vec<&str> = arn.split('#').collect();
    match parts.as_slice() {
        [hash, name, v] => Ok(LayerRef::V1 { hash: (*hash).to_owned(), name: (*name).to_owned(), version: version(v)? }),
        _ => Err(bad()),
    }
}

impl Fc {
    pub async fn create_layer_version(&self, account: &str, name: &str, body: Bytes) -> CoreResult<LayerVersionRecord> {
        check_layer_name(name)?;
        let (req, package): (LayerBody, _) = self.parse_with_package(body, &LAYER_SHAPE).await?;
        let runtimes = req.compatible_runtime.filter(|r| !r.is_empty()).ok_or_else(|| {
            CoreError::required_hint("CompatibleRuntime", "Give a non-empty list of runtimes.")
        })?;
        if let Some(bad) = runtimes.iter().find(|r| !RUNTIMES.contains(&r.as_str())) {
            return Err(CoreError::invalid_value("CompatibleRuntime", RUNTIMES.join(" | "), bad));
        }
        let description = req.description.unwrap_or_default();
        crate::service::max_len("Description", &description, 256)?;
        let package = package.ok_or_else(|| {
            CoreError::required_hint("Code", "Give code.zipFile, or code.ossBucketName and code.ossObjectName.")
        })?;
        let code = self.store_package(package, None).await?;
        let body = json!({"description": description, "compatibleRuntime": runtimes, "license": req.license.unwrap_or_default()});
        Ok(self.meta.create_layer_version(account, name, &body, &code, &self.timestamp()).await?)
    }

    pub async fn get_layer_version(&self, account: &str, name: &str, version: &str) -> CoreResult<LayerVersionRecord> {
        let not_found = || CoreError::LayerVersionNotFound { layer: name.to_owned(), version: version.to_owned() };
        let v: u64 = version.parse().map_err(|_| not_found())?;
        self.meta.get_layer_version(account, name, v).await.map_err(meta_err(not_found))
    }

    /// A layer version by ARN: the caller's own, or another account's public one.
    pub async fn get_layer_version_by_arn(&self, account: &str, arn: &str) -> CoreResult<LayerVersionRecord> {
        let (owner, name, version) = match parse_arn(arn)? {
            LayerRef::V2 { account, name, version } => (account, name, version),
            LayerRef::V1 { hash, name, version } if hash == account_hash(account) => (account.to_owned(), name, version),
            LayerRef::V1 { name, version, .. } => {
                return Err(CoreError::LayerVersionNotFound { layer: name, version: version.to_string() });
            }
        };
        let rec = self.get_layer_version(&owner, &name, &version.to_string()).await?;
        if owner != account && rec.acl != 1 {
            return Err(CoreError::LayerVersionNotFound { layer: name, version: version.to_string() });
        }
        Ok(rec)
    }

    /// Every layer a function names must exist and be readable by its account.
    pub(crate) async fn check_layers(&self, account: &str, layers: &[String]) -> CoreResult<()> {
        for arn in layers {
            self.get_layer_version_by_arn(account, arn).await.map_err(|e| match e {
                CoreError::LayerVersionNotFound { .. } => CoreError::invalid(format!("layer '{arn}' does not exist")),
                other => other,
            })?;
        }
        Ok(())
    }

    pub async fn list_layers(
        &self,
        account: &str,
        page: &PageQuery,
        public: Option<&str>,
        official: Option<&str>,
    ) -> CoreResult<(Vec<LayerVersionRecord>, Option<String>)> {
        let flag = |v: Option<&str>| v.is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if flag(official) {
            // openfc has no official layers.
            return Ok((Vec::new(), None));
        }
        let items = self.meta.list_latest_layers(account, page).await?;
        let (mut items, next) = page.finish(items, |l| &l.layer_name);
        if flag(public) {
            items.retain(|l| l.acl == 1);
        }
        Ok((items, next))
    }

    pub async fn list_layer_versions(
        &self,
        account: &str,
        name: &str,
        limit: Option<&str>,
        start_version: Option<&str>,
    ) -> CoreResult<(Vec<LayerVersionRecord>, Option<u64>)> {
        let page = PageQuery::new(limit, None, None, None)?;
        let start = match start_version.filter(|s| !s.is_empty()) {
            None => 1,
            Some(s) => s.parse().map_err(|_| CoreError::invalid_value("StartVersion", "a version number", s))?,
        };
        let mut items = self.meta.list_layer_versions(account, name, start, page.limit).await?;
        if items.is_empty() && start <= 1 {
            return Err(CoreError::LayerNotFound(name.to_owned()));
        }
        let next = items.get(page.limit).map(|l| l.version);
        items.truncate(page.limit);
        Ok((items, next))
    }

    pub async fn delete_layer_version(&self, account: &str, name: &str, version: &str) -> CoreResult<()> {
        let rec = self.get_layer_version(account, name, version).await?;
        match self.meta.delete_layer_version(account, name, rec.version).await {
            Ok(()) => Ok(()),
            Err(MetaError::NotFound) => {
                Err(CoreError::LayerVersionNotFound { layer: name.to_owned(), version: version.to_owned() })
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn put_layer_acl(&self, account: &str, name: &str, public: Option<&str>) -> CoreResult<()> {
        let acl = match public.map(str::to_ascii_lowercase).as_deref() {
            Some("true") => 1,
            Some("false") => 0,
            other => {
                return Err(CoreError::invalid_value("Public", "true | false", other.unwrap_or("")));
            }
        };
        self.meta.set_layer_acl(account, name, acl).await.map_err(meta_err(|| CoreError::LayerNotFound(name.to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns() {
        assert!(matches!(parse_arn("acs:fc:cn-hangzhou:123:layers/l/versions/2"),
            Ok(LayerRef::V2 { ref account, ref name, version: 2 }) if account == "123" && name == "l"));
        assert!(matches!(parse_arn("abc#l#3"), Ok(LayerRef::V1 { version: 3, .. })));
        for bad in ["x", "a#b", "a#b#c", "acs:fc:r:1:layers/l", "acs:fc:r:1:functions/l/versions/1"] {
            assert!(parse_arn(bad).is_err(), "{bad}");
        }
    }
}
