//! The service use cases (CreateService ... ListServices), on top of the ports.

use crate::error::{CoreError, CoreResult};
use crate::names::{Qualifier, ServiceName};
use crate::page::PageQuery;
use crate::ports::{MetaError, ServiceRecord};
use crate::service::{SERVICE_SHAPE, ServiceFields};
use crate::usecase::{Fc, UPDATE_ATTEMPTS, etag_matches, from_config, new_etag, to_config};
use crate::versions::Resolved;
use crate::wire::lenient::parse_body;

impl Fc {
    pub async fn create_service(&self, account: &str, body: &[u8]) -> CoreResult<ServiceRecord> {
        let fields: ServiceFields = parse_body(body, &SERVICE_SHAPE)?;
        let name = ServiceName::parse(
            fields.service_name.as_deref().ok_or_else(|| CoreError::required("ServiceName"))?,
        )?;
        let fields = fields.with_defaults();
        fields.validate()?;
        let now = self.timestamp();
        let rec = ServiceRecord {
            account_id: account.to_owned(),
            name: name.to_string(),
            id: uuid::Uuid::new_v4().to_string(),
            config: to_config(&fields)?,
            etag: new_etag(),
            created_time: now.clone(),
            modified_time: now,
        };
        self.meta.create_service(&rec).await.map_err(|e| match e {
            MetaError::AlreadyExists => CoreError::ServiceAlreadyExists(name.to_string()),
            other => other.into(),
        })?;
        Ok(rec)
    }

    pub async fn get_service(&self, account: &str, name: &ServiceName, q: &Qualifier) -> CoreResult<ServiceRecord> {
        let mut rec = self.meta.get_service(account, name.as_str()).await.map_err(Self::service_missing(name))?;
        if let Resolved::Version(v) = self.resolve(account, name, q).await? {
            // The snapshot taken at publish time, described by the version's description.
            let version = self.version(account, name, v).await?;
            rec.config = version.service_config;
            if let Some(obj) = rec.config.as_object_mut() {
                obj.insert("description".into(), version.description.into());
            }
            rec.modified_time = version.modified_time;
        }
        Ok(rec)
    }

    pub async fn update_service(
        &self,
        account: &str,
        name: &ServiceName,
        if_match: Option<&str>,
        body: &[u8],
    ) -> CoreResult<ServiceRecord> {
        let patch: ServiceFields = parse_body(body, &SERVICE_SHAPE)?;
        patch.validate()?;
        for _ in 0..UPDATE_ATTEMPTS {
            let mut rec = self.meta.get_service(account, name.as_str()).await.map_err(Self::service_missing(name))?;
            if !etag_matches(if_match, &rec.etag) {
                return Err(CoreError::PreconditionFailed);
            }
            let mut fields: ServiceFields = from_config(&rec.config)?;
            fields.apply(patch.clone());
            fields.validate()?;
            let expected = std::mem::replace(&mut rec.etag, new_etag());
            rec.config = to_config(&fields)?;
            rec.modified_time = self.timestamp();
            let result = self.meta.update_service(&rec, &expected).await;
            self.changed(crate::cluster::Change::Service { account: account.to_owned(), service: name.to_string() }).await;
            match result {
                Ok(()) => return Ok(rec),
                Err(MetaError::PreconditionFailed) if if_match.is_none() => continue,
                Err(MetaError::PreconditionFailed) => return Err(CoreError::PreconditionFailed),
                Err(e) => return Err(Self::service_missing(name)(e)),
            }
        }
        Err(CoreError::Internal(format!("service '{name}' kept changing during the update")))
    }

    pub async fn delete_service(&self, account: &str, name: &ServiceName, if_match: Option<&str>) -> CoreResult<()> {
        let rec = self.meta.get_service(account, name.as_str()).await.map_err(Self::service_missing(name))?;
        if !etag_matches(if_match, &rec.etag) {
            return Err(CoreError::PreconditionFailed);
        }
        self.check_service_empty(account, name).await?;
        let result = self.meta.delete_service(account, name.as_str(), if_match.map(|m| m.trim_matches('"'))).await;
        self.changed(crate::cluster::Change::Service { account: account.to_owned(), service: name.to_string() }).await;
        match result {
            Ok(()) => {
                // Tags die with their service; a failure here leaves only an orphaned tag document.
                let _ = self.meta.delete_doc(account, crate::tags::KIND, &self.service_arn(account, name), None).await;
                Ok(())
            }
            Err(MetaError::Conflict(_)) => {
                self.check_service_empty(account, name).await?;
                Err(CoreError::Internal(format!("service '{name}' could not be deleted")))
            }
            Err(MetaError::PreconditionFailed) => Err(CoreError::PreconditionFailed),
            Err(e) => Err(Self::service_missing(name)(e)),
        }
    }

    /// Refuses, naming what is in the way, when the service still has functions, versions or aliases.
    async fn check_service_empty(&self, account: &str, name: &ServiceName) -> CoreResult<()> {
        let functions = self.meta.count_functions(account, name.as_str()).await?;
        let versions = self.meta.count_versions(account, name.as_str()).await?;
        let aliases = self.meta.list_docs(account, crate::versions::ALIAS, &format!("{name}/"), "", 100).await?.len();
        let mut blocking = Vec::new();
        for (n, what) in [(functions, "function(s)"), (versions, "version(s)"), (aliases as u64, "alias(es)")] {
            if n > 0 {
                blocking.push(format!("{n} {what}"));
            }
        }
        if blocking.is_empty() {
            return Ok(());
        }
        Err(CoreError::ServiceNotEmpty {
            service: name.to_string(),
            detail: format!("it still has {}; delete them first", blocking.join(", ")),
        })
    }

    pub async fn list_services(
        &self,
        account: &str,
        page: &PageQuery,
    ) -> CoreResult<(Vec<ServiceRecord>, Option<String>)> {
        let items = self.meta.list_services(account, page).await?;
        Ok(page.finish(items, |s| &s.name))
    }

}
