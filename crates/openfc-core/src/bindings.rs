//! Records FC keeps for other products, which openfc stores and lists but does not act on (spec §5.1):
//! a service's VPC bindings (CreateVpcBinding / ListVpcBindings / DeleteVpcBinding — they change nothing
//! about the function's networking) and a function's event sources (RegisterEventSource / ListEventSources
//! / DeregisterEventSource — nothing delivers events from them).
//!
//! Both live as documents under what they describe, so they go with it: bindings are keyed `SVC/VPC_ID`
//! and removed with the service, event sources `SVC/FN/QUALIFIER/SOURCE_ARN` and removed with the
//! function (the same statement that removes its async configs, `SVC/FN/...`).

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{CoreError, CoreResult};
use crate::names::{FunctionName, Qualifier, ServiceName};
use crate::ports::{Document, MetaError};
use crate::usecase::{Fc, new_etag};
use crate::wire::lenient::{Field, Shape, parse_body};

pub use crate::dockey::{EVENT_SOURCE, VPC_BINDING};
use crate::dockey::{DocKey, prefix};

/// Listing reads at most this many records of one service or function.
const MAX_LISTED: usize = 1000;

static VPC_SHAPE: Shape = Shape::Object(&[Field("vpcId", &Shape::Any)]);
static SOURCE_SHAPE: Shape = Shape::Object(&[Field("sourceArn", &Shape::Any)]);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VpcBody {
    vpc_id: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourceBody {
    source_arn: Option<Value>,
}

/// A required, non-empty string field of a request body.
fn required_string(field: &str, value: Option<Value>) -> CoreResult<String> {
    match value {
        None => Err(CoreError::required(field)),
        Some(Value::String(s)) if s.trim().is_empty() => Err(CoreError::invalid_value(field, "a non-empty string", s)),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(CoreError::invalid_value(field, "a string", other)),
    }
}

/// VPC ids as Alibaba Cloud writes them (`vpc-bp1...`): letters, digits, `-`, `_`, at most 128.
pub fn validate_vpc_id(id: &str) -> CoreResult<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(CoreError::bad_format("VpcId", "^[-_a-zA-Z0-9]{1,128}$", id))
    }
}

/// Event source ARNs: at most 1024 characters, no control characters.
pub fn validate_source_arn(arn: &str) -> CoreResult<()> {
    if arn.is_empty() || arn.chars().count() > 1024 || arn.chars().any(char::is_control) {
        return Err(CoreError::invalid_value(
            "SourceArn",
            "1 to 1024 characters without control characters",
            arn.escape_debug(),
        ));
    }
    Ok(())
}

fn binding_prefix(service: &ServiceName) -> String {
    prefix::vpc_bindings(service.as_str())
}

fn source_prefix(service: &ServiceName, function: &FunctionName, q: &Qualifier) -> String {
    prefix::event_sources(service.as_str(), function.as_str(), q)
}

fn source_json(doc: &Document) -> Value {
    json!({
        "sourceArn": doc.body.get("sourceArn").cloned().unwrap_or(Value::Null),
        "createdTime": doc.created_time,
    })
}

impl Fc {
    /// Every document of `kind` whose key starts with `prefix`, in key order (at most MAX_LISTED).
    async fn all_docs(&self, account: &str, kind: &'static str, prefix: &str) -> CoreResult<Vec<Document>> {
        let mut docs = self.meta.list_docs(account, kind, prefix, "", MAX_LISTED).await?;
        docs.truncate(MAX_LISTED);
        Ok(docs)
    }

    fn new_document(&self, account: &str, kind: &'static str, key: String, body: Value) -> Document {
        let now = self.timestamp();
        Document { account_id: account.to_owned(), kind, key, body, etag: new_etag(), created_time: now.clone(), modified_time: now }
    }

    async fn existing_service(&self, account: &str, service: &ServiceName) -> CoreResult<()> {
        self.meta.get_service(account, service.as_str()).await.map_err(Self::service_missing(service))?;
        Ok(())
    }

    /// The function must exist and the qualifier must name LATEST, a version or an alias that exists.
    async fn source_target(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
    ) -> CoreResult<()> {
        self.fresh_function(account, service, function).await?;
        self.resolve(account, service, q).await.map(|_| ())
    }

    // ---- VPC bindings ----

    /// Binding an already bound VPC again succeeds and changes nothing.
    pub async fn create_vpc_binding(&self, account: &str, service: &ServiceName, body: &[u8]) -> CoreResult<()> {
        self.existing_service(account, service).await?;
        let req: VpcBody = parse_body(body, &VPC_SHAPE)?;
        let vpc_id = required_string("VpcId", req.vpc_id)?;
        validate_vpc_id(&vpc_id)?;
        let key = DocKey::VpcBinding { service: service.as_str(), vpc_id: &vpc_id }.key();
        let doc = self.new_document(account, VPC_BINDING, key, json!({ "vpcId": vpc_id }));
        self.meta.put_doc(&doc).await?;
        // A DeleteService that ran between the check and the write would leave this binding behind.
        if let Err(MetaError::NotFound) = self.meta.get_service(account, service.as_str()).await {
            let _ = self.meta.delete_doc(account, VPC_BINDING, &doc.key, None).await;
            return Err(CoreError::ServiceNotFound(service.to_string()));
        }
        Ok(())
    }

    pub async fn list_vpc_bindings(&self, account: &str, service: &ServiceName) -> CoreResult<Vec<String>> {
        self.existing_service(account, service).await?;
        let docs = self.all_docs(account, VPC_BINDING, &binding_prefix(service)).await?;
        Ok(docs.into_iter().filter_map(|d| d.body.get("vpcId").and_then(Value::as_str).map(str::to_owned)).collect())
    }

    pub async fn delete_vpc_binding(&self, account: &str, service: &ServiceName, vpc_id: &str) -> CoreResult<()> {
        self.existing_service(account, service).await?;
        let key = DocKey::VpcBinding { service: service.as_str(), vpc_id }.key();
        match self.meta.delete_doc(account, VPC_BINDING, &key, None).await {
            Ok(()) => Ok(()),
            Err(MetaError::NotFound) => {
                Err(CoreError::VpcBindingNotFound { service: service.to_string(), vpc_id: vpc_id.to_owned() })
            }
            Err(e) => Err(e.into()),
        }
    }

    // ---- event sources ----

    /// Registering a registered source again succeeds and keeps its first createdTime.
    pub async fn register_event_source(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
        body: &[u8],
    ) -> CoreResult<Value> {
        self.source_target(account, service, function, q).await?;
        let req: SourceBody = parse_body(body, &SOURCE_SHAPE)?;
        let arn = required_string("SourceArn", req.source_arn)?;
        validate_source_arn(&arn)?;
        let key = DocKey::EventSource { service: service.as_str(), function: function.as_str(), qualifier: q, source: &arn }.key();
        let doc = self.new_document(account, EVENT_SOURCE, key, json!({ "sourceArn": arn }));
        let stored = self.meta.put_doc(&doc).await?;
        // A DeleteFunction that ran between the check and the write would leave this source behind.
        if let Err(MetaError::NotFound) = self.meta.get_function(account, service.as_str(), function.as_str()).await {
            let _ = self.meta.delete_doc(account, EVENT_SOURCE, &doc.key, None).await;
            return Err(Self::function_missing(service, function)(MetaError::NotFound));
        }
        Ok(source_json(&stored))
    }

    pub async fn list_event_sources(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
    ) -> CoreResult<Vec<Value>> {
        self.source_target(account, service, function, q).await?;
        let docs = self.all_docs(account, EVENT_SOURCE, &source_prefix(service, function, q)).await?;
        Ok(docs.iter().map(source_json).collect())
    }

    pub async fn deregister_event_source(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
        source_arn: &str,
    ) -> CoreResult<()> {
        self.source_target(account, service, function, q).await?;
        let key = DocKey::EventSource { service: service.as_str(), function: function.as_str(), qualifier: q, source: source_arn }.key();
        match self.meta.delete_doc(account, EVENT_SOURCE, &key, None).await {
            Ok(()) => Ok(()),
            Err(MetaError::NotFound) => Err(CoreError::EventSourceNotFound {
                service: service.to_string(),
                function: function.to_string(),
                qualifier: q.to_string(),
                source_arn: source_arn.to_owned(),
            }),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vpc_ids_and_arns() {
        assert!(validate_vpc_id("vpc-bp1a2b3c").is_ok());
        assert!(validate_vpc_id("vpc/../x").is_err());
        assert!(validate_vpc_id("").is_err());
        assert!(validate_vpc_id(&"v".repeat(129)).is_err());
        assert!(validate_source_arn("acs:mns:cn-hangzhou:123:/topics/t").is_ok());
        assert!(validate_source_arn("a\nb").is_err());
        assert!(validate_source_arn("").is_err());
    }

    #[test]
    fn bodies() {
        assert_eq!(required_string("VpcId", Some(json!("v"))).unwrap(), "v");
        let msg = |v: Option<Value>| required_string("VpcId", v).unwrap_err().to_string();
        assert_eq!(msg(None), "VpcId is required but not provided.");
        assert_eq!(msg(Some(json!(""))), "VpcId is set to an invalid value (allowed: a non-empty string, actual: '')");
        assert_eq!(msg(Some(json!(3))), "VpcId is set to an invalid value (allowed: a string, actual: '3')");
    }
}
