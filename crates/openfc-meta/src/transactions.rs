//! The multi-statement writes (one transaction each): publishing a version (snapshot and fingerprint),
//! deleting a function with its configs, creating a layer version, deleting a service with its documents.
//! `MetaStore`'s methods in `lib.rs` call these.

use super::*;

impl SqlMeta {
    pub(crate) async fn publish_version_tx(
        &self,
        account: &str,
        service: &str,
        description: &str,
        if_match: Option<&str>,
        now: &str,
    ) -> Result<VersionRecord, MetaError> {
        let outcome = on_pool!(self, p => {
            let mut tx = p.begin().await.map_err(map_err)?;
            let bumped = match if_match {
                Some(etag) => sqlx::query(sql::BUMP_VERSION_IF).bind(account).bind(service).bind(etag)
                    .fetch_optional(&mut *tx).await,
                None => sqlx::query(sql::BUMP_VERSION).bind(account).bind(service).fetch_optional(&mut *tx).await,
            }.map_err(map_err)?;
            let Some(row) = bumped else {
                tx.rollback().await.map_err(map_err)?;
                return Err(gone_or_changed(self.get_service(account, service).await));
            };
            let id = row.int("last_version")?;
            let config = row.text("config")?;
            // The version row first: the snapshot's rows reference it.
            sqlx::query(sql::INSERT_VERSION).bind(account).bind(service).bind(id).bind(description).bind(&config)
                .bind("").bind(now).bind(now).execute(&mut *tx).await.map_err(map_err)?;
            sqlx::query(sql::SNAPSHOT_FUNCTIONS).bind(account).bind(service).bind(id)
                .execute(&mut *tx).await.map_err(map_err)?;
            // What the snapshot holds, minus bookkeeping: equal fingerprints mean nothing changed.
            let mut digest = Sha256::new();
            digest.update(config.as_bytes());
            for r in sqlx::query(sql::SNAPSHOT_CONTENT).bind(account).bind(service).bind(id)
                .fetch_all(&mut *tx).await.map_err(map_err)? {
                digest.update(b"\n");
                digest.update(r.text("name")?.as_bytes());
                digest.update(b"\0");
                digest.update(r.text("config")?.as_bytes());
                digest.update(b"\0");
                digest.update(r.opt_text("code_key")?.unwrap_or_default().as_bytes());
            }
            let fingerprint = hex::encode(digest.finalize());
            let newest = sqlx::query(sql::NEWEST_FINGERPRINT).bind(account).bind(service).bind(id)
                .fetch_optional(&mut *tx).await.map_err(map_err)?;
            if let Some(r) = newest && r.text("fingerprint")? == fingerprint {
                tx.rollback().await.map_err(map_err)?;
                return Err(MetaError::Conflict("unchanged".into()));
            }
            sqlx::query(sql::SET_FINGERPRINT).bind(account).bind(service).bind(id).bind(&fingerprint)
                .execute(&mut *tx).await.map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
            Ok::<_, MetaError>((id, config))
        })?;
        let (id, config) = outcome;
        Ok(VersionRecord {
            account_id: account.to_owned(),
            service_name: service.to_owned(),
            version_id: id as u64,
            description: description.to_owned(),
            service_config: serde_json::from_str(&config).map_err(|e| MetaError::Backend(e.to_string()))?,
            created_time: now.to_owned(),
            modified_time: now.to_owned(),
        })
    }

    pub(crate) async fn delete_function_tx(
        &self,
        account: &str,
        service: &str,
        name: &str,
        if_match: Option<&str>,
    ) -> Result<(), MetaError> {
        // The function's configs go with it, in the same transaction: a re-created function of the same
        // name must not inherit an old instance cap or async config.
        let (async_prefix, od_prefix, od_suffix, pv_prefix, pv_suffix) = (
            format!("{service}/{name}/"),
            format!("services/{service}."),
            format!("/functions/{name}"),
            format!("{service}#"),
            format!("#{name}"),
        );
        let len = |s: &str| s.chars().count() as i32;
        let done = on_pool!(self, p => {
            let mut tx = p.begin().await.map_err(map_err)?;
            let done = match if_match {
                Some(etag) => sqlx::query(sql::DELETE_FUNCTION_IF).bind(account).bind(service).bind(name).bind(etag)
                    .execute(&mut *tx).await,
                None => sqlx::query(sql::DELETE_FUNCTION).bind(account).bind(service).bind(name).execute(&mut *tx).await,
            }.map_err(map_err)?.rows_affected();
            if done == 1 {
                sqlx::query(sql::DELETE_FUNCTION_CONFIGS).bind(account)
                    .bind(len(&async_prefix)).bind(&async_prefix)
                    .bind(len(&od_prefix)).bind(&od_prefix).bind(len(&od_suffix)).bind(&od_suffix)
                    .bind(len(&pv_prefix)).bind(&pv_prefix).bind(len(&pv_suffix)).bind(&pv_suffix)
                    .execute(&mut *tx).await.map_err(map_err)?;
            }
            tx.commit().await.map_err(map_err)?;
            done
        });
        if done == 1 {
            return Ok(());
        }
        Err(gone_or_changed(self.get_function(account, service, name).await))
    }

    pub(crate) async fn create_layer_version_tx(
        &self,
        account: &str,
        name: &str,
        body: &serde_json::Value,
        code: &CodeRef,
        now: &str,
    ) -> Result<LayerVersionRecord, MetaError> {
        let (version, acl) = on_pool!(self, p => {
            let mut tx = p.begin().await.map_err(map_err)?;
            let row = sqlx::query(sql::BUMP_LAYER).bind(account).bind(name).bind(now)
                .fetch_one(&mut *tx).await.map_err(map_err)?;
            let (version, acl) = (row.int("last_version")?, row.int("acl")?);
            sqlx::query(sql::INSERT_LAYER_VERSION).bind(account).bind(name).bind(version).bind(json_text(body))
                .bind(&code.key).bind(code.checksum.to_string()).bind(code.size as i64).bind(now)
                .execute(&mut *tx).await.map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
            (version, acl)
        });
        Ok(LayerVersionRecord {
            account_id: account.to_owned(),
            layer_name: name.to_owned(),
            version: version as u64,
            body: body.clone(),
            code: code.clone(),
            acl,
            created_time: now.to_owned(),
        })
    }

    pub(crate) async fn delete_service_tx(&self, account: &str, name: &str, if_match: Option<&str>) -> Result<(), MetaError> {
        // The documents under the service go with it, in the same transaction.
        let prefix = format!("{name}/");
        let prefix_len = prefix.chars().count() as i32;
        let done = on_pool!(self, p => {
            let mut tx = p.begin().await.map_err(map_err)?;
            let done = match if_match {
                Some(etag) => sqlx::query(sql::DELETE_SERVICE_IF).bind(account).bind(name).bind(etag)
                    .execute(&mut *tx).await,
                None => sqlx::query(sql::DELETE_SERVICE).bind(account).bind(name).execute(&mut *tx).await,
            }.map_err(map_err)?.rows_affected();
            if done == 1 {
                sqlx::query(sql::DELETE_SERVICE_DOCS).bind(account).bind(prefix_len).bind(&prefix)
                    .execute(&mut *tx).await.map_err(map_err)?;
            }
            tx.commit().await.map_err(map_err)?;
            done
        });
        if done == 1 {
            return Ok(());
        }
        Err(gone_or_changed(self.get_service(account, name).await))
    }
}
