//! The metadata phase of `openfc migrate`: every table openfc owns, copied row by row from SQLite into
//! PostgreSQL. The target's schema (from openfc's own PostgreSQL migrations) decides the columns, their types and
//! the order of the tables; each row is one `INSERT .. ON CONFLICT DO NOTHING` that also reports, in the same
//! statement, whether an existing row with that key holds the same values — so a re-run inserts only what is
//! missing and refuses rows that differ instead of overwriting them.

use std::collections::{BTreeMap, BTreeSet};


use anyhow::{Context, bail};
use futures::TryStreamExt;
use indicatif::ProgressBar;
use sqlx::sqlite::SqliteRow;
// Identifiers in dynamic SQL come from the schemas themselves and are always quoted (`quote`); values are bound.
use sqlx::{AssertSqlSafe, Column as _, PgConnection, Row, SqliteConnection, TypeInfo, ValueRef};

/// Tables never copied: sqlx's bookkeeping (each side has its own dialect's migrations) and what describes one
/// node of a cluster rather than the data (a laptop's node row means nothing to the new nodes).
const NOT_COPIED: &[(&str, &str)] =
    &[("_sqlx_migrations", "migration bookkeeping, applied to the target by openfc itself"), ("nodes", "per-node runtime state"), ("node_instances", "per-node runtime state")];

/// Rows copied in one target transaction: a kill loses at most this many, which the next run copies again.
const BATCH: usize = 500;

/// How a value is bound for its target column (the SQL always casts to the column's exact type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Float,
    Bool,
    Bytes,
    /// Text and anything PostgreSQL parses from text (json, jsonb, timestamps, numeric...).
    Text,
}

impl Kind {
    fn of(pg_type: &str) -> Kind {
        match pg_type {
            "bigint" | "integer" | "smallint" => Kind::Int,
            "double precision" | "real" => Kind::Float,
            "boolean" => Kind::Bool,
            "bytea" => Kind::Bytes,
            _ => Kind::Text,
        }
    }
}

#[derive(Debug)]
struct Column {
    name: String,
    /// PostgreSQL's `format_type`, usable in `CAST(.. AS ty)`.
    ty: String,
    kind: Kind,
}

#[derive(Debug)]
pub struct Table {
    pub name: String,
    columns: Vec<Column>,
    /// Indexes into `columns`, in key order.
    key: Vec<usize>,
    /// Columns fed by a sequence (serial or identity): set past the largest copied value afterwards.
    sequenced: Vec<String>,
    /// A `GENERATED ALWAYS` identity column takes explicit values only with OVERRIDING SYSTEM VALUE.
    always_identity: bool,
    pub rows: u64,
}

/// What the copy will do: the tables in foreign-key order, and the source tables it leaves out (and why).
pub struct Plan {
    pub tables: Vec<Table>,
    pub skipped: Vec<(String, String)>,
}

#[derive(Debug, Default, Clone)]
pub struct TableStats {
    pub inserted: u64,
    pub present: u64,
}

/// A value as SQLite stored it (its storage class, whatever the column was declared as).
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

async fn source_tables(src: &mut SqliteConnection) -> anyhow::Result<Vec<String>> {
    let rows = sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .fetch_all(&mut *src)
        .await
        .context("listing the source's tables")?;
    rows.iter().map(|r| r.try_get::<String, _>(0).map_err(Into::into)).collect()
}

async fn source_columns(src: &mut SqliteConnection, table: &str) -> anyhow::Result<Vec<String>> {
    let rows = sqlx::query("SELECT name FROM pragma_table_info(?) ORDER BY cid")
        .bind(table)
        .fetch_all(&mut *src)
        .await
        .with_context(|| format!("reading the columns of source table {table}"))?;
    rows.iter().map(|r| r.try_get::<String, _>(0).map_err(Into::into)).collect()
}

const PG_TABLES: &str = "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()";

const PG_COLUMNS: &str = "SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS ty, \
    a.attidentity::text AS identity, COALESCE(pg_get_expr(d.adbin, d.adrelid), '') AS default_expr \
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
    WHERE c.relname = $1 AND n.nspname = current_schema() AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";

const PG_PRIMARY_KEY: &str = "SELECT a.attname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
    JOIN pg_namespace n ON n.oid = c.relnamespace \
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
    WHERE c.relname = $1 AND n.nspname = current_schema() AND i.indisprimary \
    ORDER BY array_position(i.indkey::int2[], a.attnum)";

const PG_FOREIGN_KEYS: &str = "SELECT c1.relname::text, c2.relname::text FROM pg_constraint k \
    JOIN pg_class c1 ON c1.oid = k.conrelid JOIN pg_class c2 ON c2.oid = k.confrelid \
    JOIN pg_namespace n ON n.oid = c1.relnamespace WHERE k.contype = 'f' AND n.nspname = current_schema()";

/// A column as the target's catalog describes it.
#[derive(sqlx::FromRow)]
struct PgColumn {
    name: String,
    ty: String,
    /// `a` (always), `d` (by default) or empty.
    identity: String,
    default_expr: String,
}

impl PgColumn {
    fn sequenced(&self) -> bool {
        !self.identity.is_empty() || self.default_expr.starts_with("nextval(")
    }
}

/// Reads both schemas and decides what is copied, in which order.
pub async fn plan(src: &mut SqliteConnection, dst: &mut PgConnection) -> anyhow::Result<Plan> {
    let target: Vec<String> = sqlx::query_scalar(PG_TABLES).fetch_all(&mut *dst).await.context("listing the target's tables")?;
    let mut skipped = Vec::new();
    let mut names = Vec::new();
    for name in source_tables(src).await? {
        if let Some((_, why)) = NOT_COPIED.iter().find(|(n, _)| *n == name) {
            skipped.push((name, (*why).to_owned()));
        } else if !target.contains(&name) {
            skipped.push((name, "not in the target's schema".to_owned()));
        } else {
            names.push(name);
        }
    }
    let fks: Vec<(String, String)> =
        sqlx::query_as(PG_FOREIGN_KEYS).fetch_all(&mut *dst).await.context("reading the target's foreign keys")?;
    let mut tables = Vec::new();
    for name in order(&names, &fks)? {
        let context = || format!("reading the target's schema of table {name}");
        let cols: Vec<PgColumn> = sqlx::query_as(PG_COLUMNS).bind(&name).fetch_all(&mut *dst).await.with_context(context)?;
        let key: Vec<String> = sqlx::query_scalar(PG_PRIMARY_KEY).bind(&name).fetch_all(&mut *dst).await.with_context(context)?;
        if key.is_empty() {
            // Without a key a re-run could not tell a copied row from a new one.
            bail!("table {name}: the target has no primary key, so it cannot be copied idempotently");
        }
        let source = source_columns(src, &name).await?;
        if let Some(c) = source.iter().find(|c| !cols.iter().any(|t| &t.name == *c)) {
            bail!("table {name}: the target has no column {c} (is the target's openfc older than the data directory's?)");
        }
        // Columns only the target has keep their defaults.
        let copied: Vec<&PgColumn> = cols.iter().filter(|c| source.contains(&c.name)).collect();
        let columns: Vec<Column> =
            copied.iter().map(|c| Column { name: c.name.clone(), ty: c.ty.clone(), kind: Kind::of(&c.ty) }).collect();
        let key = key
            .iter()
            .map(|k| columns.iter().position(|c| &c.name == k).with_context(|| format!("table {name}: the source has no key column {k}")))
            .collect::<anyhow::Result<_>>()?;
        let sequenced = copied.iter().filter(|c| c.sequenced()).map(|c| c.name.clone()).collect();
        let always_identity = copied.iter().any(|c| c.identity == "a");
        let count = AssertSqlSafe(format!("SELECT count(*) FROM {}", quote(&name)));
        let rows: i64 = sqlx::query_scalar(count).fetch_one(&mut *src).await.with_context(|| format!("counting source table {name}"))?;
        tables.push(Table { name, columns, key, sequenced, always_identity, rows: rows as u64 });
    }
    Ok(Plan { tables, skipped })
}

/// Refuses, before any row is written, a target that a node already started on: its first-start account is
/// another than the source's, and copying would leave two accounts before the `bootstrap` row conflicted.
pub async fn same_installation(src: &mut SqliteConnection, dst: &mut PgConnection) -> anyhow::Result<()> {
    let ours: Option<String> = sqlx::query_scalar("SELECT account_id FROM bootstrap WHERE id = 1").fetch_optional(&mut *src).await?;
    let theirs: Option<String> = sqlx::query_scalar("SELECT account_id FROM bootstrap WHERE id = 1").fetch_optional(&mut *dst).await?;
    match (ours, theirs) {
        (Some(ours), Some(theirs)) if ours != theirs => bail!(
            "table bootstrap row (id=1): the target database already belongs to another openfc installation (account \
             {theirs}, the data directory's is {ours}); nothing was copied. Migrate into a fresh database"
        ),
        _ => Ok(()),
    }
}

/// Tables ordered so every table comes after those its foreign keys reference (ties in name order).
fn order(names: &[String], fks: &[(String, String)]) -> anyhow::Result<Vec<String>> {
    let mut deps: BTreeMap<&str, BTreeSet<&str>> = names.iter().map(|n| (n.as_str(), BTreeSet::new())).collect();
    for (from, to) in fks {
        if from != to && deps.contains_key(to.as_str())
            && let Some(d) = deps.get_mut(from.as_str())
        {
            d.insert(to.as_str());
        }
    }
    let mut out: Vec<String> = Vec::new();
    while !deps.is_empty() {
        let ready: Vec<&str> = deps.iter().filter(|(_, d)| d.iter().all(|t| out.iter().any(|o| o == t))).map(|(n, _)| *n).collect();
        if ready.is_empty() {
            bail!("the target's foreign keys form a cycle between {:?}", deps.keys().collect::<Vec<_>>());
        }
        for n in ready {
            deps.remove(n);
            out.push(n.to_owned());
        }
    }
    Ok(out)
}

/// `INSERT .. ON CONFLICT DO NOTHING` plus, read from the snapshot before the insert, whether each column of an
/// existing row with the same key equals the value offered (NULL: no such row).
fn copy_sql(t: &Table) -> String {
    let cast = |i: usize| format!("CAST(${} AS {})", i + 1, t.columns[i].ty);
    let cols: Vec<String> = t.columns.iter().map(|c| quote(&c.name)).collect();
    let values: Vec<String> = (0..t.columns.len()).map(cast).collect();
    // json has no equality operator; jsonb compares documents, not spellings.
    let same: Vec<String> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| match c.ty.as_str() {
            "json" => format!("{}::jsonb IS NOT DISTINCT FROM CAST(${} AS jsonb)", quote(&c.name), i + 1),
            _ => format!("{} IS NOT DISTINCT FROM {}", quote(&c.name), cast(i)),
        })
        .collect();
    let key: Vec<String> = t.key.iter().map(|&i| format!("{} = {}", quote(&t.columns[i].name), cast(i))).collect();
    format!(
        "WITH ins AS (INSERT INTO {table} ({cols}) {over}VALUES ({values}) ON CONFLICT DO NOTHING RETURNING 1) \
         SELECT (SELECT count(*) FROM ins), (SELECT ARRAY[{same}] FROM {table} WHERE {key})",
        table = quote(&t.name),
        cols = cols.join(", "),
        over = if t.always_identity { "OVERRIDING SYSTEM VALUE " } else { "" },
        values = values.join(", "),
        same = same.join(", "),
        key = key.join(" AND "),
    )
}

fn read_val(row: &SqliteRow, i: usize) -> anyhow::Result<Val> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Val::Null);
    }
    let class = raw.type_info().name().to_owned();
    Ok(match class.as_str() {
        "INTEGER" | "BOOLEAN" => Val::Int(row.try_get(i)?),
        "REAL" => Val::Real(row.try_get(i)?),
        "BLOB" => Val::Blob(row.try_get(i)?),
        _ => Val::Text(row.try_get(i)?),
    })
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds a SQLite value as its target column's kind (0/1 → boolean, numbers → text where the column is text).
fn bind<'q>(q: PgQuery<'q>, kind: Kind, v: &Val) -> Result<PgQuery<'q>, String> {
    Ok(match (kind, v) {
        (Kind::Int, Val::Null) => q.bind(None::<i64>),
        (Kind::Int, Val::Int(n)) => q.bind(*n),
        (Kind::Int, Val::Text(s)) => q.bind(s.trim().parse::<i64>().map_err(|_| format!("'{s}' is not an integer"))?),
        (Kind::Float, Val::Null) => q.bind(None::<f64>),
        (Kind::Float, Val::Real(f)) => q.bind(*f),
        (Kind::Float, Val::Int(n)) => q.bind(*n as f64),
        (Kind::Bool, Val::Null) => q.bind(None::<bool>),
        (Kind::Bool, Val::Int(n)) => q.bind(*n != 0),
        (Kind::Bytes, Val::Null) => q.bind(None::<Vec<u8>>),
        (Kind::Bytes, Val::Blob(b)) => q.bind(b.clone()),
        (Kind::Bytes, Val::Text(s)) => q.bind(s.clone().into_bytes()),
        (Kind::Text, Val::Null) => q.bind(None::<String>),
        (Kind::Text, Val::Text(s)) => q.bind(s.clone()),
        (Kind::Text, Val::Int(n)) => q.bind(n.to_string()),
        (Kind::Text, Val::Real(f)) => q.bind(f.to_string()),
        (Kind::Text, Val::Blob(b)) => q.bind(String::from_utf8(b.clone()).map_err(|_| "binary data in a text column".to_owned())?),
        (k, v) => return Err(format!("cannot store {v:?} in a {k:?} column")),
    })
}

fn describe_key(t: &Table, vals: &[Val]) -> String {
    let parts: Vec<String> = t
        .key
        .iter()
        .map(|&i| {
            let v = match &vals[i] {
                Val::Null => "NULL".to_owned(),
                Val::Int(n) => n.to_string(),
                Val::Real(f) => f.to_string(),
                Val::Text(s) => format!("'{s}'"),
                Val::Blob(b) => format!("x'{}'", hex::encode(b)),
            };
            format!("{}={v}", t.columns[i].name)
        })
        .collect();
    format!("({})", parts.join(", "))
}

/// Copies one table. Rows already in the target with equal values count as present; a row whose key exists
/// with other values stops the copy (nothing is overwritten).
pub async fn copy_table(src: &mut SqliteConnection, dst: &mut PgConnection, t: &Table, bar: &ProgressBar) -> anyhow::Result<TableStats> {
    let cols: Vec<String> = t.columns.iter().map(|c| quote(&c.name)).collect();
    let order: Vec<String> = t.key.iter().map(|&i| quote(&t.columns[i].name)).collect();
    let select = format!("SELECT {} FROM {} ORDER BY {}", cols.join(", "), quote(&t.name), order.join(", "));
    // Shared, not copied, by every row's query (sqlx keeps the prepared statement per connection).
    let sql: std::sync::Arc<str> = copy_sql(t).into();
    let mut stats = TableStats::default();
    let mut rows = sqlx::query(AssertSqlSafe(select)).fetch(&mut *src);
    let mut tx = sqlx::Connection::begin(&mut *dst).await?;
    let mut in_batch = 0;
    while let Some(row) = rows.try_next().await.with_context(|| format!("reading source table {}", t.name))? {
        let vals: Vec<Val> = (0..t.columns.len())
            .map(|i| read_val(&row, i).with_context(|| format!("table {}: reading column {}", t.name, row.column(i).name())))
            .collect::<anyhow::Result<_>>()?;
        let mut q = sqlx::query(AssertSqlSafe(sql.clone()));
        for (c, v) in t.columns.iter().zip(&vals) {
            q = bind(q, c.kind, v).map_err(|e| anyhow::anyhow!("table {} row {}: column {}: {e}", t.name, describe_key(t, &vals), c.name))?;
        }
        let (inserted, same): (i64, Option<Vec<bool>>) =
            q.fetch_one(&mut *tx).await.map(|r| (r.get(0), r.get(1))).with_context(|| format!("table {} row {}", t.name, describe_key(t, &vals)))?;
        match same {
            _ if inserted > 0 => stats.inserted += 1,
            Some(same) if same.iter().all(|s| *s) => stats.present += 1,
            Some(same) => {
                let differ: Vec<&str> = t.columns.iter().zip(&same).filter(|(_, s)| !**s).map(|(c, _)| c.name.as_str()).collect();
                bail!(
                    "table {} row {}: the target already holds this key with different values ({}); nothing was overwritten. \
                     Migrate into a fresh database, or remove that row from the target and run again",
                    t.name,
                    describe_key(t, &vals),
                    differ.join(", ")
                );
            }
            None => bail!(
                "table {} row {}: the target refused it as a duplicate of another row (a unique constraint other than the \
                 primary key, or another migrate running at the same time)",
                t.name,
                describe_key(t, &vals)
            ),
        }
        bar.inc(1);
        in_batch += 1;
        if in_batch == BATCH {
            tx.commit().await?;
            tx = sqlx::Connection::begin(&mut *dst).await?;
            in_batch = 0;
        }
    }
    tx.commit().await?;
    drop(rows);
    for col in &t.sequenced {
        // The next generated id must not collide with a copied one.
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT MAX({c}) FROM {t}), 0) + 1, false)",
            c = quote(col),
            t = quote(&t.name)
        );
        sqlx::query(AssertSqlSafe(sql)).bind(quote(&t.name)).bind(col).execute(&mut *dst).await.with_context(|| format!("table {}: advancing the sequence of {col}", t.name))?;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn tables_follow_their_foreign_keys() {
        let names = s(&["versions", "services", "accounts", "version_functions", "timers"]);
        let fks = vec![
            ("services".into(), "accounts".into()),
            ("versions".into(), "services".into()),
            ("version_functions".into(), "versions".into()),
            ("version_functions".into(), "version_functions".into()),
            ("functions".into(), "services".into()), // not copied: ignored
        ];
        assert_eq!(order(&names, &fks).unwrap(), s(&["accounts", "timers", "services", "versions", "version_functions"]));
        let cycle = vec![("a".into(), "b".into()), ("b".into(), "a".into())];
        assert!(order(&s(&["a", "b"]), &cycle).unwrap_err().to_string().contains("cycle"));
    }

    #[test]
    fn statement_casts_to_the_target_types_and_compares_existing_rows() {
        let t = Table {
            name: "t".into(),
            columns: vec![
                Column { name: "id".into(), ty: "integer".into(), kind: Kind::Int },
                Column { name: "doc".into(), ty: "json".into(), kind: Kind::Text },
                Column { name: "on".into(), ty: "boolean".into(), kind: Kind::Bool },
            ],
            key: vec![0],
            sequenced: vec!["id".into()],
            always_identity: true,
            rows: 0,
        };
        let sql = copy_sql(&t);
        assert!(sql.contains("INSERT INTO \"t\" (\"id\", \"doc\", \"on\") OVERRIDING SYSTEM VALUE VALUES (CAST($1 AS integer), CAST($2 AS json), CAST($3 AS boolean)) ON CONFLICT DO NOTHING"), "{sql}");
        assert!(sql.contains("\"doc\"::jsonb IS NOT DISTINCT FROM CAST($2 AS jsonb)"), "{sql}");
        assert!(sql.ends_with("FROM \"t\" WHERE \"id\" = CAST($1 AS integer))"), "{sql}");
        assert_eq!(describe_key(&t, &[Val::Int(7), Val::Null, Val::Int(1)]), "(id=7)");
    }

    #[test]
    fn values_take_their_target_kind() {
        assert_eq!(Kind::of("bigint"), Kind::Int);
        assert_eq!(Kind::of("jsonb"), Kind::Text);
        assert_eq!(Kind::of("character varying(20)"), Kind::Text);
        let q = || sqlx::query::<sqlx::Postgres>("");
        assert!(bind(q(), Kind::Bool, &Val::Int(1)).is_ok());
        assert!(bind(q(), Kind::Int, &Val::Text("12".into())).is_ok());
        assert!(bind(q(), Kind::Int, &Val::Text("x".into())).err().unwrap().contains("not an integer"));
        assert!(bind(q(), Kind::Bool, &Val::Text("yes".into())).is_err());
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
