//! What an invocation runs: the qualifier followed to a function snapshot (an alias's additional-version
//! weights decide per request), from the hot caches, so the invoke path normally reads no database.

use std::sync::Arc;

use rand::Rng;

use crate::error::{CoreError, CoreResult};
use crate::names::{FunctionName, Qualifier, ServiceName};
use crate::ports::{FunctionRecord, ServiceRecord};
use crate::usecase::Fc;
use crate::versions::Alias;

pub struct InvokeTarget {
    pub function: Arc<FunctionRecord>,
    /// The function's layers, in order.
    pub layers: Vec<crate::ports::CodeRef>,
    /// The on-demand config's `maximumInstanceCount` for this qualifier, when set.
    pub max_instances: Option<u32>,
    pub service: Arc<ServiceRecord>,
    /// The qualifier as the caller gave it (`LATEST` when none).
    pub qualifier: String,
    /// The version that runs, or `None` for LATEST.
    pub version: Option<u64>,
}

/// Picks the version for one request: each additional version with its weight, the main one otherwise.
pub fn route(alias: &Alias, roll: f64) -> CoreResult<u64> {
    let mut acc = 0.0;
    for (version, weight) in &alias.additional_version_weight {
        acc += weight;
        if roll < acc {
            return Ok(version.get());
        }
    }
    Ok(alias.version_id.get())
}

impl Fc {
    async fn cached_service(&self, account: &str, service: &ServiceName) -> CoreResult<Arc<ServiceRecord>> {
        let key = (account.to_owned(), service.to_string());
        if let Some(s) = self.hot.services.get(&key) {
            return Ok(s);
        }
        let since = self.hot.services.epoch();
        let rec = Arc::new(self.meta.get_service(account, service.as_str()).await.map_err(Self::service_missing(service))?);
        self.hot.services.put(since, key, rec.clone());
        Ok(rec)
    }

    pub async fn invoke_target(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
    ) -> CoreResult<InvokeTarget> {
        // The thread-local generator must not live across the await.
        let roll = rand::rng().random::<f64>();
        self.invoke_target_routed(account, service, function, q, roll).await
    }

    /// As `invoke_target`, with the alias routing roll given (1.0 always picks the alias's main version).
    pub async fn invoke_target_routed(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
        roll: f64,
    ) -> CoreResult<InvokeTarget> {
        let svc = self.cached_service(account, service).await?;
        let version = match q {
            Qualifier::Latest => None,
            Qualifier::Version(v) => Some(*v),
            Qualifier::Alias(a) => {
                let alias = self.cached_alias(account, service, a).await?;
                Some(route(&alias, roll)?)
            }
        };
        let rec = match version {
            None => self.shared_function(account, service, function, &Qualifier::Latest).await?,
            Some(v) => self.shared_function(account, service, function, &Qualifier::Version(v)).await?,
        };
        let arns: Vec<String> = rec.config.get("layers").and_then(|l| serde_json::from_value(l.clone()).ok()).unwrap_or_default();
        let mut layers = Vec::new();
        for arn in arns {
            let key = (account.to_owned(), arn.clone());
            let layer = match self.hot.layers.get(&key) {
                Some(l) => l,
                None => {
                    let since = self.hot.layers.epoch();
                    let l = self.get_layer_version_by_arn(account, &arn).await.map_err(|_| {
                        CoreError::invalid(format!("layer '{arn}' of function '{function}' no longer exists"))
                    })?;
                    self.hot.layers.put(since, key, l.clone());
                    l
                }
            };
            layers.push(layer.code);
        }
        let resource = crate::configs::on_demand_key(service, q, function);
        let key = (account.to_owned(), resource.clone());
        let max = match self.hot.on_demand.get(&key) {
            Some(m) => m,
            None => {
                let since = self.hot.on_demand.epoch();
                let m = match self.meta.get_doc(account, crate::configs::ON_DEMAND, &resource).await {
                    Ok(d) => d.body.get("maximumInstanceCount").and_then(|v| v.as_i64()),
                    Err(crate::ports::MetaError::NotFound) => None,
                    Err(e) => return Err(e.into()),
                };
                self.hot.on_demand.put(since, key, m);
                m
            }
        };
        let max_instances = max.map(|m| m.clamp(0, u32::MAX as i64) as u32);
        Ok(InvokeTarget { function: rec, layers, max_instances, service: svc, qualifier: q.to_string(), version })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn weights_route() {
        let alias = Alias {
            alias_name: "a".into(),
            version_id: crate::names::VersionId::new(1),
            description: String::new(),
            additional_version_weight: BTreeMap::from([(crate::names::VersionId::new(2), 0.2), (crate::names::VersionId::new(3), 0.3)]),
            resolve_policy: "Random".into(),
            route_policy: None,
        };
        assert_eq!(route(&alias, 0.0).unwrap(), 2);
        assert_eq!(route(&alias, 0.19).unwrap(), 2);
        assert_eq!(route(&alias, 0.2).unwrap(), 3);
        assert_eq!(route(&alias, 0.49).unwrap(), 3);
        assert_eq!(route(&alias, 0.5).unwrap(), 1);
        assert_eq!(route(&alias, 0.999).unwrap(), 1);
    }
}
