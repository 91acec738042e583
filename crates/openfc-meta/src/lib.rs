//! `MetaStore` on sqlx: SQLite (the embedded default) and PostgreSQL (shared by many nodes), one
//! migrations folder per dialect, the same `$n` SQL on both. sqlx errors stop here: callers see the small
//! semantic `MetaError`. Every write is a single conditional statement, so nothing assumes this process
//! owns the database.

mod rows;
mod sql;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use openfc_core::page::PageQuery;
use openfc_core::ports::{
    AccessKeyRecord, AccountRecord, CodeRef, FunctionRecord, KeyStatus, MetaError, MetaStore, ServiceRecord,
    TouchOutcome,
};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use rows::{Cols, access_key_from_row, function_from_row, service_from_row};

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
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

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

    /// Distinguishes "gone" from "changed" after a conditional write touched no row.
    async fn missing_or_changed(&self, exists: bool) -> MetaError {
        if exists { MetaError::PreconditionFailed } else { MetaError::NotFound }
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
                .bind(root.status.as_str()).bind(&root.created_time).execute(&mut *tx).await.map_err(map_err)?;
            tx.commit().await.map_err(map_err)
        })
    }

    async fn first_account(&self) -> Result<Option<AccountRecord>, MetaError> {
        on_pool!(self, p => {
            let row = sqlx::query(sql::FIRST_ACCOUNT).fetch_optional(p).await.map_err(map_err)?;
            row.map(|r| Ok(AccountRecord { id: r.text("id")?, created_time: r.text("created_time")? })).transpose()
        })
    }

    async fn put_access_key(&self, key: &AccessKeyRecord) -> Result<(), MetaError> {
        on_pool!(self, p => sqlx::query(sql::INSERT_KEY).bind(&key.id).bind(&key.account_id).bind(&key.sealed_secret)
            .bind(key.status.as_str()).bind(&key.created_time).execute(p).await.map(|_| ()).map_err(map_err))
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
        let exists = self.get_service(&r.account_id, &r.name).await.is_ok();
        Err(self.missing_or_changed(exists).await)
    }

    async fn delete_service(&self, account: &str, name: &str, if_match: Option<&str>) -> Result<(), MetaError> {
        let done = on_pool!(self, p => match if_match {
            Some(etag) => sqlx::query(sql::DELETE_SERVICE_IF).bind(account).bind(name).bind(etag).execute(p).await,
            None => sqlx::query(sql::DELETE_SERVICE).bind(account).bind(name).execute(p).await,
        }.map_err(map_err)?.rows_affected());
        if done == 1 {
            return Ok(());
        }
        let exists = self.get_service(account, name).await.is_ok();
        Err(self.missing_or_changed(exists).await)
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
        let exists = self.get_function(&r.account_id, &r.service_name, &r.name).await.is_ok();
        Err(self.missing_or_changed(exists).await)
    }

    async fn delete_function(
        &self,
        account: &str,
        service: &str,
        name: &str,
        if_match: Option<&str>,
    ) -> Result<(), MetaError> {
        let done = on_pool!(self, p => match if_match {
            Some(etag) => sqlx::query(sql::DELETE_FUNCTION_IF).bind(account).bind(service).bind(name).bind(etag)
                .execute(p).await,
            None => sqlx::query(sql::DELETE_FUNCTION).bind(account).bind(service).bind(name).execute(p).await,
        }.map_err(map_err)?.rows_affected());
        if done == 1 {
            return Ok(());
        }
        let exists = self.get_function(account, service, name).await.is_ok();
        Err(self.missing_or_changed(exists).await)
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
