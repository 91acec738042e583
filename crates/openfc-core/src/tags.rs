//! Tags on services (spec §5.10): TagResource, UntagResource, GetResourceTags, ListTaggedResources, and
//! the `tag_<key>=<value>` filter of ListServices. One document per tagged resource, keyed by its ARN.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{CoreError, CoreResult};
use crate::names::ServiceName;
use crate::page::PageQuery;
use crate::ports::{Document, MetaError, ServiceRecord};
use crate::usecase::{Fc, new_etag};
use crate::wire::lenient::{Field, Shape, parse_body};

pub use crate::dockey::TAGS as KIND;
const MAX_TAGS: usize = 20;

static TAG_SHAPE: Shape = Shape::Object(&[
    Field("resourceArn", &Shape::Any),
    Field("tags", &Shape::MapOf(&Shape::Any)),
    Field("tagKeys", &Shape::Any),
    Field("all", &Shape::Any),
]);

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TagBody {
    resource_arn: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    tag_keys: Option<Vec<String>>,
    all: Option<bool>,
}

fn tags_of(doc: &Document) -> BTreeMap<String, String> {
    doc.body.get("tags").and_then(|t| serde_json::from_value(t.clone()).ok()).unwrap_or_default()
}

fn validate_tag(key: &str, value: &str) -> CoreResult<()> {
    let lower = key.to_ascii_lowercase();
    if key.is_empty() || key.chars().count() > 128 || lower.starts_with("aliyun") || lower.starts_with("acs:") {
        return Err(CoreError::invalid_value(
            "Tags key",
            "1 to 128 characters, not starting with 'aliyun' or 'acs:'",
            key,
        ));
    }
    let len = value.chars().count();
    if len > 256 {
        return Err(CoreError::invalid_value(
            "Tags value",
            "at most 256 characters",
            format_args!("{len} characters for key {key}"),
        ));
    }
    Ok(())
}

impl Fc {
    pub fn service_arn(&self, account: &str, service: &ServiceName) -> String {
        format!("acs:fc:{}:{account}:services/{service}", self.region)
    }

    /// The full ARN of the service or function `arn` names — a full ARN or, as the SDKs document, a partial one
    /// (`services/SVC`, `services/SVC/functions/FN`) — which must exist in this account.
    async fn tagged_service(&self, account: &str, arn: Option<&str>) -> CoreResult<String> {
        let arn = arn.filter(|a| !a.is_empty()).ok_or_else(|| CoreError::required("ResourceArn"))?;
        let prefix = format!("acs:fc:{}:{account}:", self.region);
        let path = arn.strip_prefix(&prefix).unwrap_or(arn);
        let bad = || {
            CoreError::invalid_value(
                "ResourceArn",
                format_args!(
                    "a service or function of this account: {prefix}services/NAME[/functions/FUNCTION], \
                     services/NAME or services/NAME/functions/FUNCTION"
                ),
                arn,
            )
        };
        let rest = path.strip_prefix("services/").ok_or_else(bad)?;
        let (svc, function) = match rest.split_once("/functions/") {
            Some((s, f)) => (s, Some(f)),
            None => (rest, None),
        };
        let service = ServiceName::parse(svc).map_err(|_| bad())?;
        match function {
            Some(f) => {
                let function = crate::names::FunctionName::parse(f).map_err(|_| bad())?;
                self.fresh_function(account, &service, &function).await?;
            }
            None => {
                self.meta.get_service(account, service.as_str()).await.map_err(Self::service_missing(&service))?;
            }
        }
        Ok(format!("{prefix}{path}"))
    }

    /// A deleted function's tags go with it (a re-created one starts untagged).
    pub(crate) async fn forget_function_tags(&self, account: &str, service: &ServiceName, function: &crate::names::FunctionName) {
        let arn = format!("{}/functions/{function}", self.service_arn(account, service));
        match self.meta.delete_doc(account, KIND, &arn, None).await {
            Ok(()) | Err(MetaError::NotFound) => {}
            Err(e) => tracing::warn!(%arn, error = %e, "could not remove a deleted function's tags"),
        }
    }

    async fn tag_doc(&self, account: &str, arn: &str) -> CoreResult<Option<Document>> {
        match self.meta.get_doc(account, KIND, arn).await {
            Ok(d) => Ok(Some(d)),
            Err(MetaError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn store_tags(&self, account: &str, arn: &str, tags: BTreeMap<String, String>) -> CoreResult<()> {
        if tags.is_empty() {
            match self.meta.delete_doc(account, KIND, arn, None).await {
                Ok(()) | Err(MetaError::NotFound) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        let now = self.timestamp();
        let doc = Document {
            account_id: account.to_owned(),
            kind: KIND,
            key: arn.to_owned(),
            body: json!({"resourceArn": arn, "tags": tags}),
            etag: new_etag(),
            created_time: now.clone(),
            modified_time: now,
        };
        self.meta.put_doc(&doc).await?;
        Ok(())
    }

    pub async fn tag_resource(&self, account: &str, body: &[u8]) -> CoreResult<()> {
        let req: TagBody = parse_body(body, &TAG_SHAPE)?;
        let arn = self.tagged_service(account, req.resource_arn.as_deref()).await?;
        let new = req.tags.filter(|t| !t.is_empty()).ok_or_else(|| CoreError::required("Tags"))?;
        let mut tags = self.tag_doc(account, &arn).await?.map(|d| tags_of(&d)).unwrap_or_default();
        for (k, v) in new {
            validate_tag(&k, &v)?;
            tags.insert(k, v);
        }
        if tags.len() > MAX_TAGS {
            return Err(CoreError::invalid_value(
                "Tags",
                format_args!("at most {MAX_TAGS} tags per resource"),
                format_args!("{} tags", tags.len()),
            ));
        }
        self.store_tags(account, &arn, tags).await
    }

    pub async fn untag_resource(&self, account: &str, body: &[u8]) -> CoreResult<()> {
        let req: TagBody = parse_body(body, &TAG_SHAPE)?;
        let arn = self.tagged_service(account, req.resource_arn.as_deref()).await?;
        let mut tags = self.tag_doc(account, &arn).await?.map(|d| tags_of(&d)).unwrap_or_default();
        let keys = req.tag_keys.unwrap_or_default();
        if req.all == Some(true) {
            tags.clear();
        } else if keys.is_empty() {
            return Err(CoreError::required_hint("TagKeys", "Give tagKeys, or all: true to remove every tag."));
        }
        for k in keys {
            tags.remove(&k);
        }
        self.store_tags(account, &arn, tags).await
    }

    pub async fn get_resource_tags(&self, account: &str, arn: Option<&str>) -> CoreResult<Value> {
        let arn = self.tagged_service(account, arn).await?;
        let tags = self.tag_doc(account, &arn).await?.map(|d| tags_of(&d)).unwrap_or_default();
        Ok(json!({"resourceArn": arn, "tags": tags}))
    }

    pub async fn list_tagged_resources(&self, account: &str, page: &PageQuery) -> CoreResult<(Vec<Value>, Option<String>)> {
        let docs = self.meta.list_docs(account, KIND, "", page.start.as_deref().unwrap_or(""), page.limit).await?;
        let (docs, next) = page.finish(docs, |d| &d.key);
        Ok((docs.into_iter().map(|d| d.body).collect(), next))
    }

    /// ListServices with `tag_<key>=<value>` filters: services carrying all of them, paged by name.
    pub async fn list_services_tagged(
        &self,
        account: &str,
        page: &PageQuery,
        filters: &[(String, String)],
    ) -> CoreResult<(Vec<ServiceRecord>, Option<String>)> {
        let prefix = format!("acs:fc:{}:{account}:services/", self.region);
        let mut matching = Vec::new();
        let mut start = String::new();
        loop {
            let docs = self.meta.list_docs(account, KIND, &prefix, &start, 100).await?;
            let more = docs.len() > 100;
            for d in docs.iter().take(100) {
                let tags = tags_of(d);
                // `tag_KEY=` with no value matches every service that has the key.
                let service = &d.key[prefix.len()..];
                if !service.contains('/') && filters.iter().all(|(k, v)| tags.get(k).is_some_and(|t| v.is_empty() || t == v)) {
                    matching.push(service.to_owned());
                }
            }
            match (more, docs.get(100)) {
                (true, Some(next)) => start = next.key.clone(),
                _ => break,
            }
        }
        matching.sort();
        let mut out = Vec::new();
        for name in matching.iter().filter(|n| {
            page.prefix.as_deref().is_none_or(|p| n.starts_with(p)) && page.start.as_deref().is_none_or(|s| n.as_str() >= s)
        }) {
            if out.len() > page.limit {
                break;
            }
            if let Ok(rec) = self.meta.get_service(account, name).await {
                out.push(rec);
            }
        }
        Ok(page.finish(out, |s| &s.name))
    }
}
