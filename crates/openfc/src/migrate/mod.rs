//! `openfc migrate`: copy an embedded data directory (SQLite metadata and the local code store) into a
//! PostgreSQL database and an S3-compatible bucket, the way from one node to many. Three phases, each with a
//! progress bar on stderr: code objects (bytes), tables (rows), and a verification that reads back every
//! package the target names. Every phase only adds what is missing, so the command can be run again after an
//! interruption, or again to check; it never overwrites a row that differs (it stops and names it).

mod objects;
mod tables;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use openfc_blob::{ObjectCodeStore, S3Settings};
use openfc_core::ports::CodeStore;
use openfc_meta::SqlMeta;
use sqlx::Connection;

use crate::config::{CodeStoreKind, ServeArgs, ServeConfig, StoreArgs};

/// The target's flags are `serve`'s, so the command that starts the nodes can be written from this one.
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  openfc migrate --from /var/lib/openfc \\
      --database-url postgres://openfc:PASSWORD@db:5432/openfc \\
      --code-store s3://openfc-code --s3-endpoint http://minio:9000 \\
      --s3-access-key-id KEY --s3-secret-access-key SECRET

Stop the server using DATA_DIR first. Running it again copies only what is missing (after an interruption, or
to check), and verifies the target again. Nodes must then start with DATA_DIR's master key (--master-key-file).")]
pub struct MigrateArgs {
    /// The embedded data directory to copy: its SQLite metadata (meta.db) and local code store (code/).
    #[arg(long, value_name = "DATA_DIR")]
    pub from: PathBuf,
    /// Target database, `postgres://USER:PASSWORD@HOST:PORT/DB`; openfc's migrations are applied to it first.
    #[arg(long, env = "OPENFC_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Target code store, `s3://BUCKET` (an existing bucket).
    #[arg(long, env = "OPENFC_CODE_STORE", value_name = "s3://BUCKET")]
    pub code_store: String,
    /// S3-compatible endpoint of the bucket (e.g. http://127.0.0.1:9000) [default: AWS S3].
    #[arg(long, env = "OPENFC_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Region of the bucket [default: us-east-1].
    #[arg(long, env = "OPENFC_S3_REGION")]
    pub s3_region: Option<String>,
    /// Access key of the bucket [default: the AWS environment or instance credentials].
    #[arg(long, env = "OPENFC_S3_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,
    /// Secret of that access key.
    #[arg(long, env = "OPENFC_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,
    /// DATA_DIR's master key, named in the instructions for the nodes (never copied)
    /// [default: DATA_DIR/master.key].
    #[arg(long, env = "OPENFC_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Copy nothing: only check that every package the target database names is in the bucket, intact.
    #[arg(long)]
    pub verify_only: bool,
}

fn bar(len: u64, prefix: &'static str, unit: Unit) -> ProgressBar {
    let template = match unit {
        Unit::Rows => "{prefix:>8} [{bar:32}] {human_pos}/{human_len} rows {msg}",
        Unit::Bytes => "{prefix:>8} [{bar:32}] {bytes}/{total_bytes} {msg}",
    };
    let style = ProgressStyle::with_template(template).expect("valid template").progress_chars("=> ");
    ProgressBar::new(len).with_style(style).with_prefix(prefix)
}

#[derive(Clone, Copy)]
enum Unit {
    Rows,
    Bytes,
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

pub async fn run(a: MigrateArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    if !a.database_url.starts_with("postgres://") && !a.database_url.starts_with("postgresql://") {
        bail!("--database-url must be a PostgreSQL URL (postgres://USER:PASSWORD@HOST:PORT/DB), not `{}`", redact(&a.database_url));
    }
    // The target's code-store flags resolve exactly as `serve` resolves them.
    let cfg = ServeConfig::resolve(ServeArgs {
        store: StoreArgs { data_dir: Some(a.from.clone()), master_key_file: a.master_key_file.clone(), ..Default::default() },
        code_store: Some(a.code_store.clone()),
        s3_endpoint: a.s3_endpoint.clone(),
        s3_region: a.s3_region.clone(),
        s3_access_key_id: a.s3_access_key_id.clone(),
        s3_secret_access_key: a.s3_secret_access_key.clone(),
        ..Default::default()
    })?;
    let CodeStoreKind::S3 { bucket } = &cfg.code_store else { bail!("--code-store must be `s3://BUCKET`, not `{}`", a.code_store) };
    let target: Arc<dyn CodeStore> = Arc::new(ObjectCodeStore::s3(
        bucket,
        S3Settings {
            endpoint: cfg.s3_endpoint.clone(),
            region: cfg.s3_region.clone(),
            access_key_id: cfg.s3_access_key_id.clone(),
            secret_access_key: cfg.s3_secret_access_key.clone(),
        },
    )?);
    let from = absolute(&a.from);
    let db_file = from.join("meta.db");
    if !a.verify_only && !db_file.is_file() {
        bail!("{} has no meta.db: --from must be the data directory of an embedded (SQLite) openfc", from.display());
    }
    println!("openfc migrate: {} -> {} + s3://{bucket}", from.display(), redact(&a.database_url));

    // The schemas as `serve` leaves them: the same constructor applies each side's pending migrations.
    let target_url = &a.database_url;
    SqlMeta::connect(target_url).await.with_context(|| format!("opening the target database {}", redact(target_url)))?.close().await;
    let mut dst = sqlx::PgConnection::connect(target_url).await.with_context(|| format!("connecting to {}", redact(target_url)))?;

    if !a.verify_only {
        let src_url = format!("sqlite://{}", db_file.display());
        SqlMeta::connect(&src_url).await.with_context(|| format!("opening {}", db_file.display()))?.close().await;
        let mut src = sqlx::SqliteConnection::connect(&src_url).await.with_context(|| format!("opening {}", db_file.display()))?;
        copy_all(&from, &mut src, &mut dst, target.as_ref()).await?;
        src.close().await?;
    }

    let named = objects::named_packages(&mut dst).await?;
    let pb = bar(objects::named_bytes(&named), "verify", Unit::Bytes);
    let v = objects::verify(named, target.as_ref(), &pb).await?;
    pb.finish_and_clear();
    dst.close().await?;
    let counts: Vec<String> = objects::KINDS.iter().zip(v.references).map(|(k, n)| format!("{n} {k}")).collect();
    println!("verified: {}: {} code objects ({})", counts.join(", "), v.objects, HumanBytes(v.bytes));
    for p in &v.problems {
        eprintln!("verify: {p}");
    }
    if v.problems.is_empty() {
        println!("verification passed: every code package the database names is in s3://{bucket} with the right CRC-64");
    }
    if !a.verify_only {
        notes(&from, &cfg.store.master_key_file, &a.database_url, bucket);
    }
    println!("elapsed: {:.1} s", started.elapsed().as_secs_f64());
    if !v.problems.is_empty() {
        bail!(
            "verification failed: {} problem(s) with code packages in s3://{bucket} (listed above); run `openfc migrate` \
             again to copy what is missing",
            v.problems.len()
        );
    }
    Ok(())
}

/// The objects, then the rows: a node started early on the target never sees a function whose code is absent.
async fn copy_all(from: &Path, src: &mut sqlx::SqliteConnection, dst: &mut sqlx::PgConnection, target: &dyn CodeStore) -> anyhow::Result<()> {
    // One read transaction: the rows are one snapshot of the source, even if something still writes to it.
    let mut snapshot = src.begin().await?;
    let plan = tables::plan(&mut snapshot, dst).await?;
    tables::same_installation(&mut snapshot, dst).await?;

    let local = objects::local_objects(&from.join("code"))?;
    let pb = bar(local.iter().map(|o| o.size).sum(), "objects", Unit::Bytes);
    let o = objects::copy(&local, target, &pb).await?;
    pb.finish_and_clear();
    println!("code objects: {} copied ({}), {} already in the bucket", o.copied, HumanBytes(o.copied_bytes), o.present);

    let pb = bar(plan.tables.iter().map(|t| t.rows).sum(), "tables", Unit::Rows);
    let (mut inserted, mut present) = (0, 0);
    let mut lines = Vec::new();
    for t in &plan.tables {
        pb.set_message(t.name.clone());
        let s = tables::copy_table(&mut snapshot, dst, t, &pb).await?;
        inserted += s.inserted;
        present += s.present;
        lines.push(format!("  {:<20} {} copied, {} already there", t.name, s.inserted, s.present));
    }
    pb.finish_and_clear();
    snapshot.rollback().await?;
    println!("rows: {inserted} copied, {present} already in the database ({} tables)", plan.tables.len());
    for l in lines {
        println!("{l}");
    }
    for (name, why) in &plan.skipped {
        println!("  {name:<20} skipped: {why}");
    }
    if inserted == 0 && o.copied == 0 {
        println!("nothing new: the target already held everything");
    }
    Ok(())
}

/// What stays behind, and what the nodes need.
fn notes(from: &Path, master_key: &Path, database_url: &str, bucket: &str) {
    let has_files = |d: &str| std::fs::read_dir(from.join(d)).is_ok_and(|mut e| e.next().is_some());
    if has_files("images") {
        println!("not copied: container images under {} (each node pulls the images its functions use again)", from.join("images").display());
    }
    if has_files("oss") {
        println!(
            "not copied: {} (local stand-ins for OSS buckets named by code.ossBucketName); with an S3 code store those are \
             buckets on the S3 endpoint",
            from.join("oss").display()
        );
    }
    if has_files("logs") {
        println!("not copied: function logs under {} (they stay on this machine)", from.join("logs").display());
    }
    let key = absolute(master_key);
    if !key.is_file() {
        println!("WARNING: no master key at {}: AccessKey secrets in the database cannot be unsealed without the key they were sealed with", key.display());
        return;
    }
    println!(
        "master key: AccessKey secrets in the database are sealed with {key}, and code URLs are signed with it. \
         migrate did not copy the file: give every node a copy of it (owner-only, mode 0600) and start each with:\n  \
         openfc serve --database-url {url} --code-store s3://{bucket} --master-key-file /path/to/master.key",
        key = key.display(),
        url = redact(database_url),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
