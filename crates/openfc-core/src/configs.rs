//! The per-function configs (spec §5.9): provision, on-demand and async-invoke. Validated and stored here;
//! the invoker enforces them. (Custom domains, spec §5.8, are in `domains`.)

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{CoreError, CoreResult, meta_err};
use crate::names::{FunctionName, Qualifier, ServiceName};
use crate::page::PageQuery;
use crate::ports::{Document, MetaError};
use crate::usecase::{Fc, etag_matches, new_etag};
use crate::wire::lenient::{Field, Shape, parse_body};

/// Custom domains moved to `domains`; these stay reachable here for existing callers.
pub use crate::domains::{DOMAIN, domain_json};

pub use crate::dockey::{ASYNC_CONFIG as ASYNC, ON_DEMAND, PROVISION};
use crate::dockey::DocKey;

fn to_body<T: Serialize>(v: &T) -> CoreResult<Value> {
    serde_json::to_value(v).map_err(|e| CoreError::Internal(e.to_string()))
}

fn new_doc(account: &str, kind: &'static str, key: String, body: Value, now: String) -> Document {
    Document { account_id: account.to_owned(), kind, key, body, etag: new_etag(), created_time: now.clone(), modified_time: now }
}

impl Fc {
    // ---- per-function configs ----

    /// The function must exist and the qualifier must name something that exists.
    async fn config_target(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
    ) -> CoreResult<()> {
        self.fresh_function(account, service, function).await?;
        self.resolve(account, service, q).await.map(|_| ())
    }

    pub async fn put_provision_config(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
        body: &[u8],
    ) -> CoreResult<Value> {
        if let Qualifier::Version(_) = q {
            return Err(CoreError::invalid_value("Qualifier", "an alias or LATEST for a provision config", q));
        }
        self.config_target(account, service, function, q).await?;
        let req: ProvisionBody = parse_body(body, &PROVISION_SHAPE)?;
        let key = DocKey::Provision { service: service.as_str(), qualifier: q, function: function.as_str() }.key();
        let mut cfg = match self.meta.get_doc(account, PROVISION, &key).await {
            Ok(d) => serde_json::from_value(d.body).map_err(|e| CoreError::Internal(e.to_string()))?,
            Err(MetaError::NotFound) => ProvisionConfig::default(),
            Err(e) => return Err(e.into()),
        };
        let target = req.target.ok_or_else(|| CoreError::required("Target"))?;
        if !(0..=10_000).contains(&target) {
            return Err(CoreError::invalid_value("Target", "0 to 10000", target));
        }
        cfg.target = target;
        // `null` leaves a list unchanged; `[]` clears it.
        crate::service::replace(&mut cfg.scheduled_actions, req.scheduled_actions);
        crate::service::replace(&mut cfg.target_tracking_policies, req.target_tracking_policies);
        crate::service::replace(&mut cfg.always_allocate_cpu, req.always_allocate_cpu);
        for a in cfg.scheduled_actions.iter().flatten() {
            let t = a.get("target").and_then(Value::as_i64).unwrap_or(0);
            if a.get("name").and_then(Value::as_str).is_none_or(str::is_empty) || !(0..=10_000).contains(&t) {
                return Err(CoreError::invalid_value(
                    "ScheduledActions",
                    "actions with a name and a target from 0 to 10000",
                    Value::Object(a.clone()),
                ));
            }
        }
        for p in cfg.target_tracking_policies.iter().flatten() {
            let (min, max) = (p.get("minCapacity").and_then(Value::as_i64), p.get("maxCapacity").and_then(Value::as_i64));
            if p.get("name").and_then(Value::as_str).is_none_or(str::is_empty) || min.zip(max).is_some_and(|(a, b)| a > b) {
                return Err(CoreError::invalid_value(
                    "TargetTrackingPolicies",
                    "policies with a name and minCapacity ≤ maxCapacity",
                    Value::Object(p.clone()),
                ));
            }
        }
        let doc = new_doc(account, PROVISION, key, to_body(&cfg)?, self.timestamp());
        self.meta.put_doc(&doc).await?;
        Ok(provision_json(account, &doc.key, &cfg))
    }

    pub async fn get_provision_config(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
    ) -> CoreResult<Value> {
        self.config_target(account, service, function, q).await?;
        let key = DocKey::Provision { service: service.as_str(), qualifier: q, function: function.as_str() }.key();
        let cfg = match self.meta.get_doc(account, PROVISION, &key).await {
            Ok(d) => serde_json::from_value(d.body).map_err(|e| CoreError::Internal(e.to_string()))?,
            Err(MetaError::NotFound) => ProvisionConfig::default(),
            Err(e) => return Err(e.into()),
        };
        Ok(provision_json(account, &key, &cfg))
    }

    pub async fn list_provision_configs(
        &self,
        account: &str,
        service: Option<&str>,
        qualifier: Option<&str>,
        page: &PageQuery,
    ) -> CoreResult<(Vec<Value>, Option<String>)> {
        let parent = match (service.filter(|s| !s.is_empty()), qualifier.filter(|q| !q.is_empty())) {
            (Some(s), q) => crate::dockey::prefix::provision(s, q),
            (None, Some(_)) => {
                return Err(CoreError::required_hint("ServiceName", "A qualifier filter needs serviceName."));
            }
            (None, None) => String::new(),
        };
        let (docs, next) = self.list_children(account, PROVISION, &parent, page).await?;
        let items = docs
            .iter()
            .map(|d| {
                let cfg: ProvisionConfig = serde_json::from_value(d.body.clone()).unwrap_or_default();
                provision_json(account, &d.key, &cfg)
            })
            .collect();
        // `list_children` already gives the token relative to `parent`, as the next page reads it.
        Ok((items, next))
    }

    pub async fn put_on_demand_config(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
        if_match: Option<&str>,
        body: &[u8],
    ) -> CoreResult<Value> {
        self.config_target(account, service, function, q).await?;
        let req: OnDemandBody = parse_body(body, &ON_DEMAND_SHAPE)?;
        let max = req.maximum_instance_count.ok_or_else(|| CoreError::required("MaximumInstanceCount"))?;
        if !(0..=100_000).contains(&max) {
            return Err(CoreError::invalid_value("MaximumInstanceCount", "0 to 100000", max));
        }
        let key = on_demand_key(service, q, function);
        if let Some(m) = if_match
            && let Ok(existing) = self.meta.get_doc(account, ON_DEMAND, &key).await
            && !etag_matches(Some(m), &existing.etag)
        {
            return Err(CoreError::PreconditionFailed);
        }
        let doc = new_doc(account, ON_DEMAND, key, json!({"maximumInstanceCount": max}), self.timestamp());
        let doc = self.meta.put_doc(&doc).await?;
        self.changed(crate::cluster::Change::OnDemand { account: account.to_owned(), key: doc.key.clone() }).await;
        Ok(on_demand_json(&doc))
    }

    pub async fn get_on_demand_config(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
    ) -> CoreResult<Value> {
        self.config_target(account, service, function, q).await?;
        let key = on_demand_key(service, q, function);
        let doc = self.meta.get_doc(account, ON_DEMAND, &key).await.map_err(meta_err(|| CoreError::OnDemandConfigNotFound(key.clone())))?;
        Ok(on_demand_json(&doc))
    }

    pub async fn delete_on_demand_config(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
        if_match: Option<&str>,
    ) -> CoreResult<()> {
        self.config_target(account, service, function, q).await?;
        let key = on_demand_key(service, q, function);
        let if_match = if_match.map(|m| m.trim_matches('"'));
        let deleted = self.meta.delete_doc(account, ON_DEMAND, &key, if_match).await;
        // After the delete, as `put` does: an invocation reading meanwhile cannot put the old value back.
        self.changed(crate::cluster::Change::OnDemand { account: account.to_owned(), key: key.clone() }).await;
        deleted.map_err(meta_err(|| CoreError::OnDemandConfigNotFound(key.clone())))
    }

    pub async fn list_on_demand_configs(&self, account: &str, page: &PageQuery) -> CoreResult<(Vec<Value>, Option<String>)> {
        let (docs, next) = self.list_children(account, ON_DEMAND, "", page).await?;
        Ok((docs.iter().map(on_demand_json).collect(), next))
    }

    pub async fn put_async_config(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
        body: &[u8],
    ) -> CoreResult<Value> {
        self.config_target(account, service, function, q).await?;
        let req: AsyncConfig = parse_body(body, &ASYNC_SHAPE)?;
        if let Some(age) = req.max_async_event_age_in_seconds
            && !(1..=86_400).contains(&age)
        {
            return Err(CoreError::invalid_value("MaxAsyncEventAgeInSeconds", "1 to 86400", age));
        }
        if let Some(n) = req.max_async_retry_attempts
            && !(0..=8).contains(&n)
        {
            return Err(CoreError::invalid_value("MaxAsyncRetryAttempts", "0 to 8", n));
        }
        for dest in req.destination_config.iter().flat_map(|d| [&d.on_success, &d.on_failure]).flatten() {
            // MNS, EventBridge and the other kinds are refused here, not accepted and silently dropped.
            crate::asyncq::parse_destination(&dest.destination, account)?;
        }
        let cfg = AsyncConfig {
            max_async_retry_attempts: Some(req.max_async_retry_attempts.unwrap_or(3)),
            ..req
        };
        let key = async_key(service, function, q);
        let doc = new_doc(account, ASYNC, key.clone(), to_body(&cfg)?, self.timestamp());
        let doc = self.meta.put_doc(&doc).await?;
        // Every qualifier of the function may have fallen back to this config (LATEST's): forget them all.
        self.changed(crate::cluster::Change::AsyncConfigs { account: account.to_owned(), service: service.to_string(), function: function.to_string() })
            .await;
        Ok(async_json(&doc))
    }

    pub async fn get_async_config(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
    ) -> CoreResult<Value> {
        self.config_target(account, service, function, q).await?;
        let key = async_key(service, function, q);
        let missing = || CoreError::AsyncConfigNotExists(format!("{service}:{function}:{q}"));
        let doc = self.meta.get_doc(account, ASYNC, &key).await.map_err(meta_err(missing))?;
        Ok(async_json(&doc))
    }

    pub async fn delete_async_config(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
    ) -> CoreResult<()> {
        self.config_target(account, service, function, q).await?;
        let key = async_key(service, function, q);
        let missing = || CoreError::AsyncConfigNotExists(format!("{service}:{function}:{q}"));
        self.meta.delete_doc(account, ASYNC, &key, None).await.map_err(meta_err(missing))?;
        // Every qualifier of the function may have fallen back to this config (LATEST's): forget them all.
        self.changed(crate::cluster::Change::AsyncConfigs { account: account.to_owned(), service: service.to_string(), function: function.to_string() })
            .await;
        Ok(())
    }

    pub async fn list_async_configs(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        page: &PageQuery,
    ) -> CoreResult<(Vec<Value>, Option<String>)> {
        self.fresh_function(account, service, function).await?;
        let (docs, next) = self.list_children(account, ASYNC, &format!("{service}/{function}/"), page).await?;
        Ok((docs.iter().map(async_json).collect(), next))
    }
}

impl Fc {
    /// Removes async-invoke, on-demand and provision configs whose function no longer exists (left by
    /// versions of openfc that kept them after DeleteFunction); run once at start. Returns how many went.
    pub async fn remove_orphan_configs(&self, account: &str) -> CoreResult<usize> {
        let mut removed = 0;
        for kind in [ASYNC, ON_DEMAND, PROVISION] {
            let mut start = String::new();
            loop {
                let docs = self.meta.list_docs(account, kind, "", &start, 500).await?;
                for d in &docs {
                    let owner = match kind {
                        ASYNC => d.key.split_once('/').and_then(|(s, rest)| rest.split_once('/').map(|(f, _)| (s, f))),
                        ON_DEMAND => d.key.strip_prefix("services/").and_then(|r| r.split_once("/functions/"))
                            .map(|(s, f)| (s.split_once('.').map_or(s, |(s, _)| s), f)),
                        _ => {
                            let mut parts = d.key.splitn(3, '#');
                            match (parts.next(), parts.next(), parts.next()) {
                                (Some(s), Some(_), Some(f)) => Some((s, f)),
                                _ => None,
                            }
                        }
                    };
                    let Some((svc, func)) = owner else { continue };
                    if let Err(MetaError::NotFound) = self.meta.get_function(account, svc, func).await {
                        match self.meta.delete_doc(account, kind, &d.key, None).await {
                            Ok(()) | Err(MetaError::NotFound) => removed += 1,
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                if docs.len() < 500 {
                    break;
                }
                start = format!("{}\u{0}", docs.last().map(|d| d.key.clone()).unwrap_or_default());
            }
        }
        Ok(removed)
    }
}

/// A provision config to keep warm: (service, qualifier, function, target).
pub struct ProvisionTarget {
    pub service: ServiceName,
    pub qualifier: Qualifier,
    pub function: FunctionName,
    pub target: i64,
}

impl Fc {
    /// Every provision config of the account with a target above zero.
    pub async fn provision_targets(&self, account: &str) -> CoreResult<Vec<ProvisionTarget>> {
        let mut out = Vec::new();
        let mut start = String::new();
        loop {
            let docs = self.meta.list_docs(account, PROVISION, "", &start, 100).await?;
            for d in docs.iter().take(100) {
                let cfg: ProvisionConfig = serde_json::from_value(d.body.clone()).unwrap_or_default();
                let mut parts = d.key.splitn(3, '#');
                let (Some(s), Some(q), Some(f)) = (parts.next(), parts.next(), parts.next()) else { continue };
                if cfg.target > 0
                    && let (Ok(service), Ok(qualifier), Ok(function)) =
                        (ServiceName::parse(s), Qualifier::parse(q), FunctionName::parse(f))
                {
                    out.push(ProvisionTarget { service, qualifier, function, target: cfg.target });
                }
            }
            match docs.get(100) {
                Some(next) => start = next.key.clone(),
                None => return Ok(out),
            }
        }
    }
}

static PROVISION_SHAPE: Shape = Shape::Object(&[
    Field("target", &Shape::Any),
    Field("scheduledActions", &Shape::Any),
    Field("targetTrackingPolicies", &Shape::Any),
    Field("alwaysAllocateCPU", &Shape::Any),
]);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProvisionBody {
    target: Option<i64>,
    scheduled_actions: Option<Vec<Map<String, Value>>>,
    target_tracking_policies: Option<Vec<Map<String, Value>>>,
    #[serde(rename = "alwaysAllocateCPU")]
    always_allocate_cpu: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ProvisionConfig {
    target: i64,
    scheduled_actions: Option<Vec<Map<String, Value>>>,
    target_tracking_policies: Option<Vec<Map<String, Value>>>,
    #[serde(rename = "alwaysAllocateCPU")]
    always_allocate_cpu: Option<bool>,
}

/// `current` is filled in by the API layer from the invoker (instances actually running).
fn provision_json(account: &str, key: &str, cfg: &ProvisionConfig) -> Value {
    json!({
        "resource": format!("{account}#{key}"),
        "target": cfg.target,
        "current": 0,
        "currentError": "",
        "scheduledActions": cfg.scheduled_actions.clone().unwrap_or_default(),
        "targetTrackingPolicies": cfg.target_tracking_policies.clone().unwrap_or_default(),
        "alwaysAllocateCPU": cfg.always_allocate_cpu.unwrap_or(true),
    })
}

static ON_DEMAND_SHAPE: Shape = Shape::Object(&[Field("maximumInstanceCount", &Shape::Any)]);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OnDemandBody {
    maximum_instance_count: Option<i64>,
}

/// Also the on-demand cache's key (`invoke`): one format, so invalidation always hits.
pub(crate) fn on_demand_key(service: &ServiceName, q: &Qualifier, function: &FunctionName) -> String {
    DocKey::OnDemand { service: service.as_str(), qualifier: q, function: function.as_str() }.key()
}

fn on_demand_json(doc: &Document) -> Value {
    json!({"resource": doc.key, "maximumInstanceCount": doc.body.get("maximumInstanceCount").cloned().unwrap_or(Value::Null)})
}

static DESTINATION: Shape = Shape::Object(&[Field("destination", &Shape::Any)]);
static ASYNC_SHAPE: Shape = Shape::Object(&[
    Field("maxAsyncEventAgeInSeconds", &Shape::Any),
    Field("maxAsyncRetryAttempts", &Shape::Any),
    Field("destinationConfig", &Shape::Object(&[Field("onSuccess", &DESTINATION), Field("onFailure", &DESTINATION)])),
    Field("statefulInvocation", &Shape::Any),
]);

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Destination {
    destination: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct DestinationConfig {
    on_success: Option<Destination>,
    on_failure: Option<Destination>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct AsyncConfig {
    max_async_event_age_in_seconds: Option<i64>,
    max_async_retry_attempts: Option<i64>,
    destination_config: Option<DestinationConfig>,
    stateful_invocation: Option<bool>,
}

fn async_key(service: &ServiceName, function: &FunctionName, q: &Qualifier) -> String {
    DocKey::AsyncConfig { service: service.as_str(), function: function.as_str(), qualifier: q }.key()
}

fn async_json(doc: &Document) -> Value {
    let mut out = doc.body.as_object().cloned().unwrap_or_default();
    let mut parts = doc.key.splitn(3, '/');
    for field in ["service", "function", "qualifier"] {
        out.insert(field.into(), parts.next().unwrap_or("").into());
    }
    out.insert("createdTime".into(), doc.created_time.clone().into());
    out.insert("lastModifiedTime".into(), doc.modified_time.clone().into());
    Value::Object(out)
}

