//! Versions and aliases (spec §5.4): publishing immutable snapshots, resolving qualifiers to them, and
//! aliases that name a version (with weighted additional versions for canaries).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{CoreError, CoreResult, meta_err};
use crate::names::{Qualifier, ServiceName, VersionId};
use crate::page::PageQuery;
use crate::ports::{Document, MetaError, VersionRecord};
use crate::usecase::{Fc, etag_matches, new_etag};
use crate::wire::lenient::{Field, Shape, parse_body};

pub use crate::dockey::ALIAS;

/// What a qualifier names once aliases are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    Latest,
    Version(u64),
}

static PUBLISH_SHAPE: Shape = Shape::Object(&[Field("description", &Shape::Any)]);

#[derive(Deserialize)]
struct PublishBody {
    description: Option<String>,
}

static POLICY_ITEM: Shape = Shape::Object(&[
    Field("type", &Shape::Any),
    Field("key", &Shape::Any),
    Field("value", &Shape::Any),
    Field("operator", &Shape::Any),
]);
static ROUTE_POLICY: Shape =
    Shape::Object(&[Field("condition", &Shape::Any), Field("policyItems", &Shape::ArrayOf(&POLICY_ITEM))]);
static ALIAS_SHAPE: Shape = Shape::Object(&[
    Field("aliasName", &Shape::Any),
    Field("versionId", &Shape::Any),
    Field("description", &Shape::Any),
    Field("additionalVersionWeight", &Shape::MapOf(&Shape::Any)),
    Field("resolvePolicy", &Shape::Any),
    Field("routePolicy", &ROUTE_POLICY),
]);

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PolicyItem {
    #[serde(rename = "type")]
    pub kind: String,
    pub key: String,
    pub value: String,
    pub operator: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct RoutePolicy {
    pub condition: String,
    pub policy_items: Vec<PolicyItem>,
}

/// A version id as clients send it: `"1"` or `1`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
enum VersionIdInput {
    Text(String),
    Number(u64),
}

impl VersionIdInput {
    fn parse(&self) -> CoreResult<VersionId> {
        match self {
            VersionIdInput::Number(n) => Ok(VersionId::new(*n)),
            VersionIdInput::Text(t) => VersionId::parse(t, "VersionId"),
        }
    }
}

/// `additionalVersionWeight` as sent: its keys must be version numbers.
fn weights(sent: BTreeMap<String, f64>) -> CoreResult<BTreeMap<VersionId, f64>> {
    sent.into_iter().map(|(k, w)| Ok((VersionId::parse(&k, "AdditionalVersionWeight key")?, w))).collect()
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AliasBody {
    alias_name: Option<String>,
    version_id: Option<VersionIdInput>,
    description: Option<String>,
    additional_version_weight: Option<BTreeMap<String, f64>>,
    resolve_policy: Option<String>,
    route_policy: Option<RoutePolicy>,
}

/// An alias as stored and returned.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Alias {
    pub alias_name: String,
    pub version_id: VersionId,
    pub description: String,
    pub additional_version_weight: BTreeMap<VersionId, f64>,
    pub resolve_policy: String,
    pub route_policy: Option<RoutePolicy>,
}

fn alias_key(service: &ServiceName, alias: &str) -> String {
    crate::dockey::DocKey::Alias { service: service.as_str(), alias }.key()
}

pub fn version_json(v: &VersionRecord) -> Value {
    json!({
        "versionId": v.version_id.to_string(),
        "description": v.description,
        "createdTime": v.created_time,
        "lastModifiedTime": v.modified_time,
    })
}

pub fn alias_json(doc: &Document) -> Value {
    let mut out = doc.body.as_object().cloned().unwrap_or_default();
    out.insert("createdTime".into(), doc.created_time.clone().into());
    out.insert("lastModifiedTime".into(), doc.modified_time.clone().into());
    Value::Object(out)
}

const WEIGHTS: &str = "AdditionalVersionWeight";

fn alias_name(value: &str) -> CoreResult<String> {
    match Qualifier::parse(value)? {
        Qualifier::Alias(a) => Ok(a),
        _ => Err(CoreError::bad_format("AliasName", &crate::names::name_pattern(128), value)),
    }
}

impl Fc {
    /// Follows a qualifier to LATEST or a published version, checking that it exists.
    pub async fn resolve(&self, account: &str, service: &ServiceName, q: &Qualifier) -> CoreResult<Resolved> {
        match q {
            Qualifier::Latest => Ok(Resolved::Latest),
            Qualifier::Version(v) => {
                self.version(account, service, *v).await?;
                Ok(Resolved::Version(*v))
            }
            Qualifier::Alias(a) => {
                let alias = self.cached_alias(account, service, a).await?;
                Ok(Resolved::Version(alias.version_id.get()))
            }
        }
    }

    pub(crate) async fn version(&self, account: &str, service: &ServiceName, id: u64) -> CoreResult<VersionRecord> {
        match self.meta.get_version(account, service.as_str(), id).await {
            Ok(v) => Ok(v),
            Err(MetaError::NotFound) => {
                self.meta.get_service(account, service.as_str()).await.map_err(Self::service_missing(service))?;
                Err(CoreError::VersionNotFound { service: service.to_string(), qualifier: id.to_string() })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn alias_doc(&self, account: &str, service: &ServiceName, name: &str) -> CoreResult<Document> {
        match self.meta.get_doc(account, ALIAS, &alias_key(service, name)).await {
            Ok(d) => Ok(d),
            Err(MetaError::NotFound) => {
                self.meta.get_service(account, service.as_str()).await.map_err(Self::service_missing(service))?;
                Err(CoreError::AliasNotFound { service: service.to_string(), qualifier: name.to_owned() })
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn cached_alias(&self, account: &str, service: &ServiceName, name: &str) -> CoreResult<Alias> {
        let key = (account.to_owned(), service.to_string(), name.to_owned());
        if let Some(a) = self.hot.aliases.get(&key) {
            return Ok(a);
        }
        let since = self.hot.aliases.epoch();
        let alias = self.alias(account, service, name).await?;
        self.hot.aliases.put(since, key, alias.clone());
        Ok(alias)
    }

    pub async fn alias(&self, account: &str, service: &ServiceName, name: &str) -> CoreResult<Alias> {
        let doc = self.alias_doc(account, service, name).await?;
        serde_json::from_value(doc.body).map_err(|e| CoreError::Internal(format!("stored alias unreadable: {e}")))
    }

    // ---- versions ----

    pub async fn publish_version(
        &self,
        account: &str,
        service: &ServiceName,
        if_match: Option<&str>,
        body: &[u8],
    ) -> CoreResult<VersionRecord> {
        let req: PublishBody = parse_body(body, &PUBLISH_SHAPE)?;
        let description = req.description.unwrap_or_default();
        crate::service::max_len("Description", &description, 256)?;
        let if_match = if_match.map(|m| m.trim().trim_matches('"'));
        let now = self.timestamp();
        match self.meta.publish_version(account, service.as_str(), &description, if_match, &now).await {
            Ok(v) => Ok(v),
            Err(MetaError::NotFound) => Err(CoreError::ServiceNotFound(service.to_string())),
            Err(MetaError::PreconditionFailed) => Err(CoreError::PreconditionFailed),
            Err(MetaError::Conflict(_)) => Err(CoreError::invalid(format!(
                "service '{service}' has not changed since its latest version: there is nothing to publish"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// ListServiceVersions: `direction` BACKWARD (default, newest first) or FORWARD; `startKey`/`nextToken`
    /// are version ids.
    pub async fn list_versions(
        &self,
        account: &str,
        service: &ServiceName,
        limit: Option<&str>,
        start: Option<&str>,
        direction: Option<&str>,
    ) -> CoreResult<(Vec<VersionRecord>, Option<String>, &'static str)> {
        self.meta.get_service(account, service.as_str()).await.map_err(Self::service_missing(service))?;
        let forward = match direction.filter(|d| !d.is_empty()) {
            None | Some("BACKWARD") => false,
            Some("FORWARD") => true,
            Some(other) => {
                return Err(CoreError::invalid_value("Direction", "FORWARD | BACKWARD", other));
            }
        };
        let page = PageQuery::new(limit, None, None, None)?;
        let start = match start.filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(s.parse::<u64>().map_err(|_| CoreError::invalid_value("NextToken", "a version id", s))?),
        };
        let mut items = self.meta.list_versions(account, service.as_str(), forward, start, page.limit).await?;
        // The item after the page is where the next page starts.
        let next = items.get(page.limit).map(|v| v.version_id.to_string());
        items.truncate(page.limit);
        Ok((items, next, if forward { "FORWARD" } else { "BACKWARD" }))
    }

    pub async fn delete_version(&self, account: &str, service: &ServiceName, id: &str) -> CoreResult<()> {
        let id: u64 = id.parse().map_err(|_| CoreError::VersionNotFound {
            service: service.to_string(),
            qualifier: id.to_owned(),
        })?;
        // As FC allows, a version an alias points at can go: the alias stays, and invoking through it answers
        // VersionNotFound for the deleted version until the alias is pointed elsewhere.
        self.version(account, service, id).await?;
        let deleted = self.meta.delete_version(account, service.as_str(), id).await;
        // This node's cached snapshots of the version go with it (`shared_function` answers from them).
        self.changed(crate::cluster::Change::Version { account: account.to_owned(), service: service.to_string(), version: id }).await;
        deleted.map_err(meta_err(|| CoreError::VersionNotFound { service: service.to_string(), qualifier: id.to_string() }))
    }

    // ---- aliases ----

    /// Checks an alias against the versions that exist.
    async fn validate_alias(&self, account: &str, service: &ServiceName, alias: &Alias) -> CoreResult<()> {
        self.version(account, service, alias.version_id.get()).await?;
        let mut sum = 0.0;
        // The alias's own version may be named too (FC accepts it; the SDKs' own tests do it): its share
        // routes where the rest goes.
        for (v, w) in &alias.additional_version_weight {
            self.version(account, service, v.get()).await?;
            if !(0.0..=1.0).contains(w) || !w.is_finite() {
                return Err(CoreError::invalid_value(WEIGHTS, "weights from 0 to 1", format_args!("{v}: {w}")));
            }
            sum += w;
        }
        if sum > 1.0 + 1e-9 {
            let allowed = "weights adding up to at most 1";
            return Err(CoreError::invalid_value(WEIGHTS, allowed, format_args!("a sum of {sum}")));
        }
        if !["Random", "Content"].contains(&alias.resolve_policy.as_str()) {
            return Err(CoreError::invalid_value("ResolvePolicy", "Random | Content", &alias.resolve_policy));
        }
        if let Some(p) = &alias.route_policy {
            for item in &p.policy_items {
                if item.key.is_empty() || !["Header", "Cookie", "Query"].contains(&item.kind.as_str()) {
                    return Err(CoreError::invalid_value(
                        "RoutePolicy.PolicyItems",
                        "items with a type (Header | Cookie | Query) and a key",
                        format!("type {}, key {}", item.kind, item.key),
                    ));
                }
            }
        }
        crate::service::max_len("Description", &alias.description, 256)
    }

    pub async fn create_alias(&self, account: &str, service: &ServiceName, body: &[u8]) -> CoreResult<Document> {
        let req: AliasBody = parse_body(body, &ALIAS_SHAPE)?;
        let name = alias_name(req.alias_name.as_deref().ok_or_else(|| CoreError::required("AliasName"))?)?;
        let version = req.version_id.ok_or_else(|| CoreError::required("VersionId"))?.parse()?;
        let alias = Alias {
            alias_name: name.clone(),
            version_id: version,
            description: req.description.unwrap_or_default(),
            additional_version_weight: weights(req.additional_version_weight.unwrap_or_default())?,
            resolve_policy: req.resolve_policy.unwrap_or_else(|| "Random".into()),
            route_policy: req.route_policy,
        };
        self.validate_alias(account, service, &alias).await?;
        let now = self.timestamp();
        let doc = Document {
            account_id: account.to_owned(),
            kind: ALIAS,
            key: alias_key(service, &name),
            body: serde_json::to_value(&alias).map_err(|e| CoreError::Internal(e.to_string()))?,
            etag: new_etag(),
            created_time: now.clone(),
            modified_time: now,
        };
        self.meta.create_doc(&doc).await.map_err(|e| match e {
            MetaError::AlreadyExists => CoreError::AliasAlreadyExists { service: service.to_string(), alias: name },
            other => other.into(),
        })?;
        Ok(doc)
    }

    pub async fn get_alias(&self, account: &str, service: &ServiceName, name: &str) -> CoreResult<Document> {
        self.alias_doc(account, service, name).await
    }

    pub async fn update_alias(
        &self,
        account: &str,
        service: &ServiceName,
        name: &str,
        if_match: Option<&str>,
        body: &[u8],
    ) -> CoreResult<Document> {
        let req: AliasBody = parse_body(body, &ALIAS_SHAPE)?;
        let mut doc = self.alias_doc(account, service, name).await?;
        if !etag_matches(if_match, &doc.etag) {
            return Err(CoreError::PreconditionFailed);
        }
        let mut alias: Alias = serde_json::from_value(doc.body.clone())
            .map_err(|e| CoreError::Internal(format!("stored alias unreadable: {e}")))?;
        if let Some(v) = req.version_id {
            alias.version_id = v.parse()?;
        }
        if let Some(d) = req.description {
            alias.description = d;
        }
        if let Some(w) = req.additional_version_weight {
            alias.additional_version_weight = weights(w)?;
        }
        if let Some(p) = req.resolve_policy {
            alias.resolve_policy = p;
        }
        if let Some(p) = req.route_policy {
            alias.route_policy = Some(p);
        }
        self.validate_alias(account, service, &alias).await?;
        let expected = std::mem::replace(&mut doc.etag, new_etag());
        doc.body = serde_json::to_value(&alias).map_err(|e| CoreError::Internal(e.to_string()))?;
        doc.modified_time = self.timestamp();
        let result = self.meta.update_doc(&doc, &expected).await;
        self.changed(crate::cluster::Change::Alias { account: account.to_owned(), service: service.to_string(), alias: name.to_owned() }).await;
        match result {
            Ok(()) => Ok(doc),
            Err(MetaError::PreconditionFailed) => Err(CoreError::PreconditionFailed),
            Err(MetaError::NotFound) => {
                Err(CoreError::AliasNotFound { service: service.to_string(), qualifier: name.to_owned() })
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete_alias(
        &self,
        account: &str,
        service: &ServiceName,
        name: &str,
        if_match: Option<&str>,
    ) -> CoreResult<()> {
        let doc = self.alias_doc(account, service, name).await?;
        if !etag_matches(if_match, &doc.etag) {
            return Err(CoreError::PreconditionFailed);
        }
        let result = self.meta.delete_doc(account, ALIAS, &doc.key, Some(&doc.etag)).await;
        self.changed(crate::cluster::Change::Alias { account: account.to_owned(), service: service.to_string(), alias: name.to_owned() }).await;
        match result {
            Ok(()) => Ok(()),
            Err(MetaError::PreconditionFailed) => Err(CoreError::PreconditionFailed),
            Err(MetaError::NotFound) => {
                Err(CoreError::AliasNotFound { service: service.to_string(), qualifier: name.to_owned() })
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list_aliases(
        &self,
        account: &str,
        service: &ServiceName,
        page: &PageQuery,
    ) -> CoreResult<(Vec<Document>, Option<String>)> {
        self.meta.get_service(account, service.as_str()).await.map_err(Self::service_missing(service))?;
        self.list_children(account, ALIAS, &format!("{service}/"), page).await
    }

    /// Lists documents under `parent` (a key prefix ending in '/'), paging by the child's own name.
    pub(crate) async fn list_children(
        &self,
        account: &str,
        kind: &'static str,
        parent: &str,
        page: &PageQuery,
    ) -> CoreResult<(Vec<Document>, Option<String>)> {
        let prefix = format!("{parent}{}", page.prefix.as_deref().unwrap_or(""));
        let start = format!("{parent}{}", page.start.as_deref().unwrap_or(""));
        let docs = self.meta.list_docs(account, kind, &prefix, &start, page.limit).await?;
        let (docs, next) = page.finish(docs, |d| &d.key);
        Ok((docs, next.map(|k| k[parent.len()..].to_owned())))
    }
}
