//! Row decoding, written once for both drivers through the small `Cols` accessor trait.

use openfc_core::ports::{AccessKeyRecord, CodeRef, FunctionRecord, KeyStatus, MetaError, ServiceRecord};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

pub trait Cols {
    fn text(&self, col: &str) -> Result<String, MetaError>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, MetaError>;
    fn int(&self, col: &str) -> Result<i64, MetaError>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, MetaError>;
}

fn decode_err(col: &str, e: sqlx::Error) -> MetaError {
    MetaError::Backend(format!("column {col}: {e}"))
}

macro_rules! impl_cols {
    ($row:ty) => {
        impl Cols for $row {
            fn text(&self, col: &str) -> Result<String, MetaError> {
                self.try_get(col).map_err(|e| decode_err(col, e))
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>, MetaError> {
                self.try_get(col).map_err(|e| decode_err(col, e))
            }
            fn int(&self, col: &str) -> Result<i64, MetaError> {
                self.try_get(col).map_err(|e| decode_err(col, e))
            }
            fn opt_int(&self, col: &str) -> Result<Option<i64>, MetaError> {
                self.try_get(col).map_err(|e| decode_err(col, e))
            }
        }
    };
}

impl_cols!(SqliteRow);
impl_cols!(PgRow);

fn json(row: &impl Cols, col: &str) -> Result<serde_json::Value, MetaError> {
    serde_json::from_str(&row.text(col)?).map_err(|e| MetaError::Backend(format!("column {col}: {e}")))
}

pub fn access_key_from_row(row: &impl Cols) -> Result<AccessKeyRecord, MetaError> {
    let status = row.text("status")?;
    Ok(AccessKeyRecord {
        id: row.text("id")?,
        account_id: row.text("account_id")?,
        sealed_secret: row.text("sealed_secret")?,
        status: KeyStatus::parse(&status).ok_or_else(|| MetaError::Backend(format!("bad key status {status}")))?,
        created_time: row.text("created_time")?,
        policy: row.opt_text("policy")?,
    })
}

pub fn service_from_row(row: &impl Cols) -> Result<ServiceRecord, MetaError> {
    Ok(ServiceRecord {
        account_id: row.text("account_id")?,
        name: row.text("name")?,
        id: row.text("id")?,
        config: json(row, "config")?,
        etag: row.text("etag")?,
        created_time: row.text("created_time")?,
        modified_time: row.text("modified_time")?,
    })
}

pub fn function_from_row(row: &impl Cols) -> Result<FunctionRecord, MetaError> {
    let code = match (row.opt_text("code_key")?, row.opt_text("code_checksum")?, row.opt_int("code_size")?) {
        (Some(key), Some(checksum), Some(size)) => Some(CodeRef {
            key,
            checksum: checksum.parse().map_err(|_| MetaError::Backend(format!("bad checksum {checksum}")))?,
            size: size as u64,
        }),
        _ => None,
    };
    Ok(FunctionRecord {
        account_id: row.text("account_id")?,
        service_name: row.text("service_name")?,
        name: row.text("name")?,
        id: row.text("id")?,
        config: json(row, "config")?,
        code,
        etag: row.text("etag")?,
        created_time: row.text("created_time")?,
        modified_time: row.text("modified_time")?,
    })
}

pub fn version_from_row(row: &impl Cols) -> Result<openfc_core::ports::VersionRecord, MetaError> {
    Ok(openfc_core::ports::VersionRecord {
        account_id: row.text("account_id")?,
        service_name: row.text("service_name")?,
        version_id: row.int("version_id")? as u64,
        description: row.text("description")?,
        service_config: json(row, "service_config")?,
        created_time: row.text("created_time")?,
        modified_time: row.text("modified_time")?,
    })
}

pub fn doc_from_row(row: &impl Cols, kind: &'static str) -> Result<openfc_core::ports::Document, MetaError> {
    Ok(openfc_core::ports::Document {
        account_id: row.text("account_id")?,
        kind,
        key: row.text("key")?,
        body: json(row, "body")?,
        etag: row.text("etag")?,
        created_time: row.text("created_time")?,
        modified_time: row.text("modified_time")?,
    })
}

pub fn layer_from_row(row: &impl Cols) -> Result<openfc_core::ports::LayerVersionRecord, MetaError> {
    let checksum = row.text("code_checksum")?;
    Ok(openfc_core::ports::LayerVersionRecord {
        account_id: row.text("account_id")?,
        layer_name: row.text("layer_name")?,
        version: row.int("version")? as u64,
        body: json(row, "body")?,
        code: CodeRef {
            key: row.text("code_key")?,
            checksum: checksum.parse().map_err(|_| MetaError::Backend(format!("bad checksum {checksum}")))?,
            size: row.int("code_size")? as u64,
        },
        acl: row.int("acl")?,
        created_time: row.text("created_time")?,
    })
}
