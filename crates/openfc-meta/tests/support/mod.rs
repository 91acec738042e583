//! Fresh metadata databases for the conformance suites: SQLite always, PostgreSQL when `OPENFC_TEST_DATABASE_URL`
//! names a server (required when `OPENFC_REQUIRE_EXTERNAL=1`). Each call makes a new database, so suites can run
//! repeatedly and in parallel.

use std::sync::Arc;

use openfc_meta::SqlMeta;

pub async fn sqlite(dir: &tempfile::TempDir) -> Arc<SqlMeta> {
    SqlMeta::connect(&format!("sqlite://{}", dir.path().join("meta.db").display())).await.unwrap()
}

/// A new PostgreSQL database named after `prefix`, or `None` (skipped) when no server is configured.
pub async fn postgres(prefix: &str) -> Option<Arc<SqlMeta>> {
    let Ok(base) = std::env::var("OPENFC_TEST_DATABASE_URL") else {
        assert!(std::env::var("OPENFC_REQUIRE_EXTERNAL").is_err(), "OPENFC_TEST_DATABASE_URL is required");
        eprintln!("skipped: OPENFC_TEST_DATABASE_URL not set");
        return None;
    };
    // Created through the server's maintenance database.
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let db = format!("{prefix}_{}_{nanos}", std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&admin).await.unwrap();
    let url = match base.rfind('/') {
        Some(i) if base[..i].contains("://") && i > base.find("://").unwrap() + 2 => format!("{}/{db}", &base[..i]),
        _ => format!("{base}/{db}"),
    };
    Some(SqlMeta::connect(&url).await.unwrap())
}
