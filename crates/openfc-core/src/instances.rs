//! ListInstances: the instances of a function version, on every live node. Each node reports what runs on it
//! with its heartbeat (`cluster`), so any node answers for all of them, at most a heartbeat late.

use crate::error::CoreResult;
use crate::cluster::InstanceInfo;
use crate::names::{FunctionName, Qualifier, ServiceName};
use crate::usecase::Fc;
use crate::versions::Resolved;

/// ListInstances' `limit`: FC allows 0 to 1000 (0: none).
pub const MAX_LIMIT: usize = 1000;

impl Fc {
    /// The instances running the version `q` resolves to (an alias: its main version and any weighted one),
    /// optionally only those named in `ids`, at most `limit`, by id.
    pub async fn list_instances(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
        ids: &[String],
        limit: usize,
    ) -> CoreResult<Vec<InstanceInfo>> {
        // FC's errors first: the service, the function, the qualifier must exist.
        self.get_function(account, service, function, &Qualifier::Latest).await?;
        let mut versions = vec![match self.resolve(account, service, q).await? {
            Resolved::Latest => "LATEST".to_owned(),
            Resolved::Version(v) => v.to_string(),
        }];
        if let Qualifier::Alias(a) = q {
            versions.extend(self.cached_alias(account, service, a).await?.additional_version_weight.keys().map(|v| v.to_string()));
        }
        let now = crate::asyncq::now_ms(self.clock.as_ref());
        let all = self.cluster.function_instances(account, service.as_str(), function.as_str(), now).await?;
        Ok(all
            .into_iter()
            .filter(|i| versions.contains(&i.version))
            .filter(|i| ids.is_empty() || ids.contains(&i.id))
            .take(limit)
            .collect())
    }
}
