//! `MetaStore` on sqlx: SQLite (the embedded default) and PostgreSQL (shared by many nodes), one
//! migrations folder per dialect, the same `$n` SQL on both. sqlx errors stop here: callers see the small
//! semantic `MetaError`. Every write is a single conditional statement, so nothing assumes this process
//! owns the database.

#![forbid(unsafe_code)]

mod rows;
mod sql;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use openfc_core::page::PageQuery;
use openfc_core::ports::{
    AccessKeyRecord, AccountRecord, CodeRef, Document, FunctionRecord, KeyStatus, LayerVersionRecord, MetaError,
    MetaStore, ServiceRecord, TouchOutcome, VersionRecord,
};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use rows::{Cols, access_key_from_row, doc_from_row, function_from_row, layer_from_row, service_from_row, version_from_row};
use sha2::{Digest, Sha256};

/// A package the collector gives up on (it crashed mid-deletion) may be taken over after this long.
const STALE_DELETION_SECS: i64 = 300;

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

pub struct SqlMeta {
    pool: Pool,
}

/// Runs the same statement-building body against whichever pool is configured.
macro_rules! on_pool {
    ($self:expr, $pool:ident => $body:expr) => {
        match &$self.pool {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}

// After the macro: textual scope.
mod accounts;
mod transactions;
mod cluster;
mod images;
mod queue;

fn map_err(e: sqlx::Error) -> MetaError {
    match &e {
        sqlx::Error::RowNotFound => MetaError::NotFound,
        sqlx::Error::Database(db) => match db.kind() {
            sqlx::error::ErrorKind::UniqueViolation => MetaError::AlreadyExists,
            sqlx::error::ErrorKind::ForeignKeyViolation => MetaError::Conflict(db.message().to_owned()),
            _ => MetaError::Backend(e.to_string()),
        },
        _ => MetaError::Backend(e.to_string()),
    }
}

fn json_text(v: &serde_json::Value) -> String {
    v.to_string()
}

impl SqlMeta {
    /// Connects and migrates. `url` is `sqlite://PATH` or `postgres://...`.
    pub async fn connect(url: &str) -> Result<Arc<Self>, MetaError> {
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(map_err)?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await.map_err(|e| MetaError::Backend(e.to_string()))?;
            Pool::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(map_err)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new().max_connections(8).connect_with(opts).await.map_err(map_err)?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await.map_err(|e| MetaError::Backend(e.to_string()))?;
            Pool::Sqlite(pool)
        } else {
            return Err(MetaError::Backend(format!(
                "unsupported database URL '{url}': use sqlite://PATH or postgres://..."
            )));
        };
        Ok(Arc::new(SqlMeta { pool }))
    }

    pub fn dialect(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }

}

/// After a conditional write touched no row: `NotFound` if a fresh read finds nothing, else `PreconditionFailed`.
fn gone_or_changed<T>(lookup: Result<T, MetaError>) -> MetaError {
    match lookup {
        Ok(_) => MetaError::PreconditionFailed,
        Err(e) => e,
    }
}

#[async_trait]
impl MetaStore for SqlMeta {
    async fn create_first_account(&self, account: &AccountRecord, root: &AccessKeyRecord) -> Result<(), MetaError> {
        on_pool!(self, p => {
            let mut tx = p.begin().await.map_err(map_err)?;
            sqlx::query(sql::INSERT_BOOTSTRAP).bind(&account.id).execute(&mut *tx).await.map_err(map_err)?;
            sqlx::query(sql::INSERT_ACCOUNT).bind(&account.id).bind(&account.created_time)
                .execute(&mut *tx).await.map_err(map_err)?;
            sqlx::query(sql::INSERT_KEY).bind(&root.id).bind(&root.account_id).bind(&root.sealed_secret)
                .bind(root.status.as_str()).bind(&root.created_time).bind(&root.policy).execute(&mut *tx).await.map_err(map_err)?;
            tx.commit().await.map_err(map_err)
        })
    }

    async fn first_account(&self) -> Result<Option<AccountRecord>, MetaError> {
        on_pool!(self, p => {
            let row = sqlx::query(sql::FIRST_ACCOUNT).fetch_optional(p).await.map_err(map_err)?;
            row.map(|r| Ok(AccountRecord { id: r.text("id")?, created_time: r.text("created_time")? })).transpose()
        })
    }

    async fn create_account(&self, account: &AccountRecord, root: &AccessKeyRecord) -> Result<(), MetaError> {
        accounts::create(self, account, root).await
    }

    async fn list_accounts(&self) -> Result<Vec<AccountRecord>, MetaError> {
        accounts::list(self).await
    }

    async fn delete_account(&self, id: &str) -> Result<(), MetaError> {
        accounts::delete(self, id).await
    }

    async fn put_access_key(&self, key: &AccessKeyRecord) -> Result<(), MetaError> {
        on_pool!(self, p => sqlx::query(sql::INSERT_KEY).bind(&key.id).bind(&key.account_id).bind(&key.sealed_secret)
            .bind(key.status.as_str()).bind(&key.created_time).bind(&key.policy).execute(p).await.map(|_| ()).map_err(map_err))
    }

    async fn get_access_key(&self, id: &str) -> Result<AccessKeyRecord, MetaError> {
        on_pool!(self, p => {
            let row = sqlx::query(sql::GET_KEY).bind(id).fetch_one(p).await.map_err(map_err)?;
            access_key_from_row(&row)
        })
    }

    async fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>, MetaError> {
        on_pool!(self, p => {
            let rows = sqlx::query(sql::LIST_KEYS).fetch_all(p).await.map_err(map_err)?;
            rows.iter().map(access_key_from_row).collect()
        })
    }

    async fn set_access_key_status(&self, id: &str, status: KeyStatus) -> Result<(), MetaError> {
        let done = on_pool!(self, p => sqlx::query(sql::SET_KEY_STATUS).bind(status.as_str()).bind(id)
            .execute(p).await.map_err(map_err)?.rows_affected());
        if done == 0 { Err(MetaError::NotFound) } else { Ok(()) }
    }

    async fn delete_access_key(&self, id: &str) -> Result<(), MetaError> {
        let done = on_pool!(self, p => sqlx::query(sql::DELETE_KEY).bind(id).execute(p).await.map_err(map_err)?
            .rows_affected());
        if done == 0 { Err(MetaError::NotFound) } else { Ok(()) }
    }

    async fn create_service(&self, r: &ServiceRecord) -> Result<(), MetaError> {
        on_pool!(self, p => sqlx::query(sql::INSERT_SERVICE).bind(&r.account_id).bind(&r.name).bind(&r.id)
            .bind(json_text(&r.config)).bind(&r.etag).bind(&r.created_time).bind(&r.modified_time)
            .execute(p).await.map(|_| ()).map_err(map_err))
    }

    async fn get_service(&self, account: &str, name: &str) -> Result<ServiceRecord, MetaError> {
        on_pool!(self, p => {
            let row = sqlx::query(sql::GET_SERVICE).bind(account).bind(name).fetch_one(p).await.map_err(map_err)?;
            service_from_row(&row)
        })
    }

    async fn update_service(&self, r: &ServiceRecord, expected_etag: &str) -> Result<(), MetaError> {
        let done = on_pool!(self, p => sqlx::query(sql::UPDATE_SERVICE).bind(json_text(&r.config)).bind(&r.etag)
            .bind(&r.modified_time).bind(&r.account_id).bind(&r.name).bind(expected_etag)
            .execute(p).await.map_err(map_err)?.rows_affected());
        if done == 1 {
            return Ok(());
        }
        Err(gone_or_changed(self.get_service(&r.account_id, &r.name).await))
    }

    async fn delete_service(&self, account: &str, name: &str, if_match: Option<&str>) -> Result<(), MetaError> {
        self.delete_service_tx(account, name, if_match).await
    }

    async fn list_services(&self, account: &str, page: &PageQuery) -> Result<Vec<ServiceRecord>, MetaError> {
        let (prefix, prefix_len, start, limit) = sql::page_args(page);
        on_pool!(self, p => {
            let rows = sqlx::query(sql::LIST_SERVICES).bind(account).bind(start).bind(prefix_len).bind(prefix)
                .bind(limit).fetch_all(p).await.map_err(map_err)?;
            rows.iter().map(service_from_row).collect()
        })
    }

    async fn count_functions(&self, account: &str, service: &str) -> Result<u64, MetaError> {
        let n: i64 = on_pool!(self, p => sqlx::query(sql::COUNT_FUNCTIONS).bind(account).bind(service)
            .fetch_one(p).await.map_err(map_err)?.int("n")?);
        Ok(n as u64)
    }

    async fn create_function(&self, r: &FunctionRecord) -> Result<(), MetaError> {
        let (key, checksum, size) = sql::code_args(&r.code);
        on_pool!(self, p => sqlx::query(sql::INSERT_FUNCTION).bind(&r.account_id).bind(&r.service_name)
            .bind(&r.name).bind(&r.id).bind(json_text(&r.config)).bind(key).bind(checksum).bind(size)
            .bind(&r.etag).bind(&r.created_time).bind(&r.modified_time)
            .execute(p).await.map(|_| ()).map_err(map_err))
    }

    async fn get_function(&self, account: &str, service: &str, name: &str) -> Result<FunctionRecord, MetaError> {
        on_pool!(self, p => {
            let row = sqlx::query(sql::GET_FUNCTION).bind(account).bind(service).bind(name)
                .fetch_one(p).await.map_err(map_err)?;
            function_from_row(&row)
        })
    }

    async fn update_function(&self, r: &FunctionRecord, expected_etag: &str) -> Result<(), MetaError> {
        let (key, checksum, size) = sql::code_args(&r.code);
        let done = on_pool!(self, p => sqlx::query(sql::UPDATE_FUNCTION).bind(json_text(&r.config)).bind(key)
            .bind(checksum).bind(size).bind(&r.etag).bind(&r.modified_time).bind(&r.account_id)
            .bind(&r.service_name).bind(&r.name).bind(expected_etag)
            .execute(p).await.map_err(map_err)?.rows_affected());
        if done == 1 {
            return Ok(());
        }
        Err(gone_or_changed(self.get_function(&r.account_id, &r.service_name, &r.name).await))
    }

    async fn delete_function(
        &self,
        account: &str,
        service: &str,
        name: &str,
        if_match: Option<&str>,
    ) -> Result<(), MetaError> {
        self.delete_function_tx(account, service, name, if_match).await
    }

    async fn list_functions(
        &self,
        account: &str,
        service: &str,
        page: &PageQuery,
    ) -> Result<Vec<FunctionRecord>, MetaError> {
        let (prefix, prefix_len, start, limit) = sql::page_args(page);
        on_pool!(self, p => {
            let rows = sqlx::query(sql::LIST_FUNCTIONS).bind(account).bind(service).bind(start).bind(prefix_len)
                .bind(prefix).bind(limit).fetch_all(p).await.map_err(map_err)?;
            rows.iter().map(function_from_row).collect()
        })
    }

    async fn publish_version(
        &self,
        account: &str,
        service: &str,
        description: &str,
        if_match: Option<&str>,
        now: &str,
    ) -> Result<VersionRecord, MetaError> {
        self.publish_version_tx(account, service, description, if_match, now).await
    }

    async fn get_version(&self, account: &str, service: &str, id: u64) -> Result<VersionRecord, MetaError> {
        on_pool!(self, p => {
            let row = sqlx::query(sql::GET_VERSION).bind(account).bind(service).bind(id as i64)
                .fetch_one(p).await.map_err(map_err)?;
            version_from_row(&row)
        })
    }

    async fn list_versions(
        &self,
        account: &str,
        service: &str,
        forward: bool,
        start: Option<u64>,
        limit: usize,
    ) -> Result<Vec<VersionRecord>, MetaError> {
        let (stmt, start) = match (forward, start) {
            (true, s) => (sql::LIST_VERSIONS_FORWARD, s.unwrap_or(0) as i64),
            (false, s) => (sql::LIST_VERSIONS_BACKWARD, s.map_or(i64::MAX, |v| v as i64)),
        };
        on_pool!(self, p => {
            let rows = sqlx::query(stmt).bind(account).bind(service).bind(start).bind(limit as i64 + 1)
                .fetch_all(p).await.map_err(map_err)?;
            rows.iter().map(version_from_row).collect()
        })
    }

    async fn delete_version(&self, account: &str, service: &str, id: u64) -> Result<(), MetaError> {
        let done = on_pool!(self, p => {
            let mut tx = p.begin().await.map_err(map_err)?;
            sqlx::query(sql::DELETE_VERSION_FUNCTIONS).bind(account).bind(service).bind(id as i64)
                .execute(&mut *tx).await.map_err(map_err)?;
            let n = sqlx::query(sql::DELETE_VERSION).bind(account).bind(service).bind(id as i64)
                .execute(&mut *tx).await.map_err(map_err)?.rows_affected();
            tx.commit().await.map_err(map_err)?;
            n
        });
        if done == 1 { Ok(()) } else { Err(MetaError::NotFound) }
    }

    async fn count_versions(&self, account: &str, service: &str) -> Result<u64, MetaError> {
        let n: i64 = on_pool!(self, p => sqlx::query(sql::COUNT_VERSIONS).bind(account).bind(service)
            .fetch_one(p).await.map_err(map_err)?.int("n")?);
        Ok(n as u64)
    }

    async fn get_version_function(
        &self,
        account: &str,
        service: &str,
        id: u64,
        name: &str,
    ) -> Result<FunctionRecord, MetaError> {
        on_pool!(self, p => {
            let row = sqlx::query(sql::GET_VERSION_FUNCTION).bind(account).bind(service).bind(id as i64).bind(name)
                .fetch_one(p).await.map_err(map_err)?;
            function_from_row(&row)
        })
    }

    async fn list_version_functions(
        &self,
        account: &str,
        service: &str,
        id: u64,
        page: &PageQuery,
    ) -> Result<Vec<FunctionRecord>, MetaError> {
        let (prefix, prefix_len, start, limit) = sql::page_args(page);
        on_pool!(self, p => {
            let rows = sqlx::query(sql::LIST_VERSION_FUNCTIONS).bind(account).bind(service).bind(id as i64)
                .bind(start).bind(prefix_len).bind(prefix).bind(limit).fetch_all(p).await.map_err(map_err)?;
            rows.iter().map(function_from_row).collect()
        })
    }

    async fn create_doc(&self, d: &Document) -> Result<(), MetaError> {
        on_pool!(self, p => sqlx::query(sql::INSERT_DOC).bind(&d.account_id).bind(d.kind).bind(&d.key)
            .bind(json_text(&d.body)).bind(&d.etag).bind(&d.created_time).bind(&d.modified_time)
            .execute(p).await.map(|_| ()).map_err(map_err))
    }

    async fn get_doc(&self, account: &str, kind: &'static str, key: &str) -> Result<Document, MetaError> {
        on_pool!(self, p => {
            let row = sqlx::query(sql::GET_DOC).bind(account).bind(kind).bind(key).fetch_one(p).await.map_err(map_err)?;
            doc_from_row(&row, kind)
        })
    }

    async fn update_doc(&self, d: &Document, expected_etag: &str) -> Result<(), MetaError> {
        let done = on_pool!(self, p => sqlx::query(sql::UPDATE_DOC).bind(json_text(&d.body)).bind(&d.etag)
            .bind(&d.modified_time).bind(&d.account_id).bind(d.kind).bind(&d.key).bind(expected_etag)
            .execute(p).await.map_err(map_err)?.rows_affected());
        if done == 1 {
            return Ok(());
        }
        Err(gone_or_changed(self.get_doc(&d.account_id, d.kind, &d.key).await))
    }

    async fn put_doc(&self, d: &Document) -> Result<Document, MetaError> {
        let created = on_pool!(self, p => sqlx::query(sql::UPSERT_DOC).bind(&d.account_id).bind(d.kind).bind(&d.key)
            .bind(json_text(&d.body)).bind(&d.etag).bind(&d.created_time).bind(&d.modified_time)
            .fetch_one(p).await.map_err(map_err)?.text("created_time")?);
        Ok(Document { created_time: created, ..d.clone() })
    }

    async fn delete_doc(
        &self,
        account: &str,
        kind: &'static str,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<(), MetaError> {
        let done = on_pool!(self, p => match if_match {
            Some(etag) => sqlx::query(sql::DELETE_DOC_IF).bind(account).bind(kind).bind(key).bind(etag).execute(p).await,
            None => sqlx::query(sql::DELETE_DOC).bind(account).bind(kind).bind(key).execute(p).await,
        }.map_err(map_err)?.rows_affected());
        if done == 1 {
            return Ok(());
        }
        Err(gone_or_changed(self.get_doc(account, kind, key).await))
    }

    async fn list_docs(
        &self,
        account: &str,
        kind: &'static str,
        prefix: &str,
        start: &str,
        limit: usize,
    ) -> Result<Vec<Document>, MetaError> {
        let prefix_len = prefix.chars().count() as i32;
        on_pool!(self, p => {
            let rows = sqlx::query(sql::LIST_DOCS).bind(account).bind(kind).bind(start).bind(prefix_len).bind(prefix)
                .bind(limit as i64 + 1).fetch_all(p).await.map_err(map_err)?;
            rows.iter().map(|r| doc_from_row(r, kind)).collect()
        })
    }

    async fn create_layer_version(
        &self,
        account: &str,
        name: &str,
        body: &serde_json::Value,
        code: &CodeRef,
        now: &str,
    ) -> Result<LayerVersionRecord, MetaError> {
        self.create_layer_version_tx(account, name, body, code, now).await
    }

    async fn get_layer_version(&self, account: &str, name: &str, version: u64) -> Result<LayerVersionRecord, MetaError> {
        on_pool!(self, p => {
            let row = sqlx::query(sql::GET_LAYER_VERSION).bind(account).bind(name).bind(version as i64)
                .fetch_one(p).await.map_err(map_err)?;
            layer_from_row(&row)
        })
    }

    async fn list_layer_versions(
        &self,
        account: &str,
        name: &str,
        start_version: u64,
        limit: usize,
    ) -> Result<Vec<LayerVersionRecord>, MetaError> {
        on_pool!(self, p => {
            let rows = sqlx::query(sql::LIST_LAYER_VERSIONS).bind(account).bind(name).bind(start_version as i64)
                .bind(limit as i64 + 1).fetch_all(p).await.map_err(map_err)?;
            rows.iter().map(layer_from_row).collect()
        })
    }

    async fn list_latest_layers(&self, account: &str, page: &PageQuery) -> Result<Vec<LayerVersionRecord>, MetaError> {
        let (prefix, prefix_len, start, limit) = sql::page_args(page);
        on_pool!(self, p => {
            let rows = sqlx::query(sql::LIST_LATEST_LAYERS).bind(account).bind(start).bind(prefix_len).bind(prefix)
                .bind(limit).fetch_all(p).await.map_err(map_err)?;
            rows.iter().map(layer_from_row).collect()
        })
    }

    async fn delete_layer_version(&self, account: &str, name: &str, version: u64) -> Result<(), MetaError> {
        let done = on_pool!(self, p => sqlx::query(sql::DELETE_LAYER_VERSION).bind(account).bind(name)
            .bind(version as i64).execute(p).await.map_err(map_err)?.rows_affected());
        if done == 1 { Ok(()) } else { Err(MetaError::NotFound) }
    }

    async fn set_layer_acl(&self, account: &str, name: &str, acl: i64) -> Result<(), MetaError> {
        let done = on_pool!(self, p => sqlx::query(sql::SET_LAYER_ACL).bind(acl).bind(account).bind(name)
            .execute(p).await.map_err(map_err)?.rows_affected());
        if done == 1 { Ok(()) } else { Err(MetaError::NotFound) }
    }

    async fn touch_package(&self, code: &CodeRef, now: i64) -> Result<TouchOutcome, MetaError> {
        let stale = now - STALE_DELETION_SECS;
        let row = on_pool!(self, p => sqlx::query(sql::TOUCH_PACKAGE).bind(&code.key).bind(code.checksum.to_string())
            .bind(code.size as i64).bind(now).bind(stale).fetch_optional(p).await.map_err(map_err)?.is_some());
        Ok(if row { TouchOutcome::Live } else { TouchOutcome::BeingDeleted })
    }

    async fn claim_garbage(&self, cutoff: i64, now: i64, limit: usize) -> Result<Vec<String>, MetaError> {
        let stale = now - STALE_DELETION_SECS;
        on_pool!(self, p => {
            let rows = sqlx::query(sql::CLAIM_GARBAGE).bind(now).bind(cutoff).bind(stale).bind(limit as i64)
                .fetch_all(p).await.map_err(map_err)?;
            rows.iter().map(|r| r.text("key")).collect()
        })
    }

    async fn forget_package(&self, key: &str) -> Result<(), MetaError> {
        on_pool!(self, p => sqlx::query(sql::FORGET_PACKAGE).bind(key).execute(p).await.map(|_| ()).map_err(map_err))
    }
}
