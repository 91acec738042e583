//! `AsyncQueue` on the same SQL (openfc-core::asyncq): the durable async events and timer ticks. A claim is
//! a candidate SELECT followed by one conditional UPDATE per candidate (the same statements on SQLite and
//! PostgreSQL); a candidate another node claimed first simply updates no row. Payloads are stored as
//! base64 text, the one type both drivers read alike.

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use openfc_core::asyncq::{AsyncEvent, AsyncQueue, AsyncStatus};
use openfc_core::stateful::InvocationFilter;
use openfc_core::ports::MetaError;

use crate::rows::Cols;
use crate::{SqlMeta, map_err};

const INSERT: &str = "INSERT INTO async_events (account_id, service_name, function_name, id, qualifier, payload, \
     status, attempts, created_ms, due_ms, source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
/// Candidates, one status at a time: each query walks its index (status, due_ms) or (status, lease_until_ms)
/// in order and stops at the limit (one query with an OR sorted the whole due backlog on every claim). Oldest
/// obligations first: events of dead nodes, then retries, then new events.
const CANDIDATES: [&str; 3] = [
    "SELECT account_id, service_name, function_name, id FROM async_events \
     WHERE status = 'Running' AND lease_until_ms < $1 ORDER BY lease_until_ms LIMIT $2",
    "SELECT account_id, service_name, function_name, id FROM async_events \
     WHERE status = 'Retrying' AND due_ms <= $1 ORDER BY due_ms LIMIT $2",
    "SELECT account_id, service_name, function_name, id FROM async_events \
     WHERE status = 'Enqueued' AND due_ms <= $1 ORDER BY due_ms LIMIT $2",
];
const CLAIM: &str = "UPDATE async_events SET status = 'Running', attempts = attempts + 1, lease_owner = $1, \
     lease_until_ms = $2, started_ms = $3 \
     WHERE account_id = $4 AND service_name = $5 AND function_name = $6 AND id = $7 \
     AND ((status IN ('Enqueued', 'Retrying') AND due_ms <= $3) OR (status = 'Running' AND lease_until_ms < $3)) \
     RETURNING *";
const SETTLE: &str = "UPDATE async_events SET status = $1, attempts = $2, due_ms = $3, ended_ms = $4, error = $5, \
     result = $6, lease_owner = NULL, lease_until_ms = NULL \
     WHERE account_id = $7 AND service_name = $8 AND function_name = $9 AND id = $10 \
     AND status = 'Running' AND lease_owner = $11";
const RENEW: &str = "UPDATE async_events SET lease_until_ms = $1 \
     WHERE account_id = $2 AND service_name = $3 AND function_name = $4 AND id = $5 \
     AND status = 'Running' AND lease_owner = $6";
const GET: &str = "SELECT * FROM async_events WHERE account_id = $1 AND service_name = $2 AND function_name = $3 AND id = $4";
const STOP: &str = "UPDATE async_events SET status = 'Stopped', ended_ms = $1, lease_owner = NULL, lease_until_ms = NULL \
     WHERE account_id = $2 AND service_name = $3 AND function_name = $4 AND id = $5 \
     AND status IN ('Enqueued', 'Running', 'Retrying')";
const DEPTH: &str = "SELECT COUNT(*) AS n, MIN(created_ms) AS oldest FROM async_events \
     WHERE status IN ('Enqueued', 'Retrying', 'Running')";
const PURGE: &str = "DELETE FROM async_events WHERE ended_ms < $1 \
     AND status IN ('Succeeded', 'Failed', 'Stopped', 'Expired')";
const TIMER_GET: &str = "SELECT next_ms, stamp FROM timers WHERE key = $1";
const TIMER_INSERT: &str = "INSERT INTO timers (key, next_ms, stamp) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING";
const TIMER_MOVE: &str = "UPDATE timers SET next_ms = $1, stamp = $2 WHERE key = $3 AND next_ms = $4";

fn event_from_row(r: &impl Cols) -> Result<AsyncEvent, MetaError> {
    let status = r.text("status")?;
    Ok(AsyncEvent {
        account_id: r.text("account_id")?,
        service: r.text("service_name")?,
        function: r.text("function_name")?,
        qualifier: r.text("qualifier")?,
        id: r.text("id")?,
        payload: Bytes::from(STANDARD.decode(r.text("payload")?).map_err(|e| MetaError::Backend(format!("payload: {e}")))?),
        status: AsyncStatus::parse(&status).ok_or_else(|| MetaError::Backend(format!("bad async status {status}")))?,
        attempts: r.int("attempts")?.clamp(0, u32::MAX as i64) as u32,
        created_ms: r.int("created_ms")?,
        due_ms: r.int("due_ms")?,
        started_ms: r.opt_int("started_ms")?,
        ended_ms: r.opt_int("ended_ms")?,
        error: r.opt_text("error")?,
        result: r.opt_text("result")?,
        source: r.text("source")?,
    })
}

/// Binds an event's insert (a macro: the query type differs per driver).
macro_rules! insert_event {
    ($ev:expr) => {
        sqlx::query(INSERT)
            .bind(&$ev.account_id)
            .bind(&$ev.service)
            .bind(&$ev.function)
            .bind(&$ev.id)
            .bind(&$ev.qualifier)
            .bind(STANDARD.encode(&$ev.payload))
            .bind($ev.status.as_str())
            .bind(i64::from($ev.attempts))
            .bind($ev.created_ms)
            .bind($ev.due_ms)
            .bind(&$ev.source)
    };
}

#[async_trait]
impl AsyncQueue for SqlMeta {
    async fn enqueue(&self, ev: &AsyncEvent) -> Result<(), MetaError> {
        on_pool!(self, p => insert_event!(ev).execute(p).await.map(|_| ()).map_err(map_err))
    }

    async fn claim(&self, now_ms: i64, owner: &str, lease_until_ms: i64, limit: u32) -> Result<Vec<AsyncEvent>, MetaError> {
        on_pool!(self, p => {
            let mut candidates = Vec::new();
            for q in CANDIDATES {
                let want = i64::from(limit) - candidates.len() as i64;
                if want <= 0 {
                    break;
                }
                candidates.extend(sqlx::query(q).bind(now_ms).bind(want).fetch_all(p).await.map_err(map_err)?);
            }
            let mut out = Vec::with_capacity(candidates.len());
            for c in &candidates {
                let row = sqlx::query(CLAIM).bind(owner).bind(lease_until_ms).bind(now_ms)
                    .bind(c.text("account_id")?).bind(c.text("service_name")?).bind(c.text("function_name")?).bind(c.text("id")?)
                    .fetch_optional(p).await.map_err(map_err)?;
                if let Some(row) = row {
                    out.push(event_from_row(&row)?);
                }
            }
            Ok(out)
        })
    }

    async fn settle(&self, ev: &AsyncEvent, owner: &str) -> Result<bool, MetaError> {
        let done = on_pool!(self, p => sqlx::query(SETTLE).bind(ev.status.as_str()).bind(i64::from(ev.attempts))
            .bind(ev.due_ms).bind(ev.ended_ms).bind(&ev.error).bind(&ev.result)
            .bind(&ev.account_id).bind(&ev.service).bind(&ev.function).bind(&ev.id).bind(owner)
            .execute(p).await.map_err(map_err)?.rows_affected());
        Ok(done == 1)
    }

    async fn get(&self, account: &str, service: &str, function: &str, id: &str) -> Result<AsyncEvent, MetaError> {
        on_pool!(self, p => {
            let row = sqlx::query(GET).bind(account).bind(service).bind(function).bind(id).fetch_one(p).await.map_err(map_err)?;
            event_from_row(&row)
        })
    }

    async fn list(&self, f: &InvocationFilter) -> Result<Vec<AsyncEvent>, MetaError> {
        enum Param {
            Text(String),
            Int(i64),
        }
        // Built from fixed fragments; every value is a bound parameter, numbered in order of appearance
        // (SQLite numbers `$n` parameters by first appearance, so they must appear in order).
        let mut sql = String::from("SELECT * FROM async_events WHERE account_id = $1 AND service_name = $2 AND function_name = $3");
        let mut params: Vec<Param> = Vec::new();
        let mut add = |sql: &mut String, frag: &str, p: Param| {
            params.push(p);
            sql.push_str(&frag.replace('?', &format!("${}", params.len() + 3)));
        };
        if let Some(q) = &f.qualifier {
            add(&mut sql, " AND qualifier = ?", Param::Text(q.clone()));
        }
        if let Some(st) = f.status {
            add(&mut sql, " AND status = ?", Param::Text(st.as_str().to_owned()));
        }
        if let Some(prefix) = &f.id_prefix {
            add(&mut sql, &format!(" AND substr(id, 1, {}) = ?", prefix.chars().count()), Param::Text(prefix.clone()));
        }
        if let Some(b) = f.started_begin {
            add(&mut sql, " AND created_ms >= ?", Param::Int(b));
        }
        if let Some(e) = f.started_end {
            add(&mut sql, " AND created_ms <= ?", Param::Int(e));
        }
        let (cmp, order) = if f.descending { ("<", "DESC") } else { (">", "ASC") };
        if let Some((ms, id)) = &f.after {
            add(&mut sql, &format!(" AND (created_ms {cmp} ?"), Param::Int(*ms));
            add(&mut sql, " OR (created_ms = ?", Param::Int(*ms));
            add(&mut sql, &format!(" AND id {cmp} ?))"), Param::Text(id.clone()));
        }
        sql.push_str(&format!(" ORDER BY created_ms {order}, id {order}"));
        add(&mut sql, " LIMIT ?", Param::Int(f.limit as i64));
        on_pool!(self, p => {
            // Audited: only the fixed fragments above and a prefix length (a number) are in the text.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(&f.account).bind(&f.service).bind(&f.function);
            for param in &params {
                q = match param {
                    Param::Text(t) => q.bind(t),
                    Param::Int(i) => q.bind(*i),
                };
            }
            let rows = q.fetch_all(p).await.map_err(map_err)?;
            rows.iter().map(event_from_row).collect()
        })
    }

    async fn stop(&self, ev: &AsyncEvent, now_ms: i64) -> Result<bool, MetaError> {
        let done = on_pool!(self, p => sqlx::query(STOP).bind(now_ms)
            .bind(&ev.account_id).bind(&ev.service).bind(&ev.function).bind(&ev.id)
            .execute(p).await.map_err(map_err)?.rows_affected());
        Ok(done == 1)
    }

    async fn renew(&self, ev: &AsyncEvent, owner: &str, lease_until_ms: i64) -> Result<bool, MetaError> {
        let done = on_pool!(self, p => sqlx::query(RENEW).bind(lease_until_ms)
            .bind(&ev.account_id).bind(&ev.service).bind(&ev.function).bind(&ev.id).bind(owner)
            .execute(p).await.map_err(map_err)?.rows_affected());
        Ok(done == 1)
    }

    async fn depth(&self, _now_ms: i64) -> Result<(u64, Option<i64>), MetaError> {
        on_pool!(self, p => {
            let row = sqlx::query(DEPTH).fetch_one(p).await.map_err(map_err)?;
            Ok((row.int("n")?.max(0) as u64, row.opt_int("oldest")?))
        })
    }

    async fn purge_finished(&self, before_ms: i64) -> Result<u64, MetaError> {
        on_pool!(self, p => sqlx::query(PURGE).bind(before_ms).execute(p).await.map(|r| r.rows_affected()).map_err(map_err))
    }

    async fn advance_timer(
        &self,
        key: &str,
        expected_next: Option<i64>,
        next_ms: i64,
        stamp: &str,
        fire: Option<&AsyncEvent>,
    ) -> Result<bool, MetaError> {
        on_pool!(self, p => {
            let mut tx = p.begin().await.map_err(map_err)?;
            let moved = match expected_next {
                None => sqlx::query(TIMER_INSERT).bind(key).bind(next_ms).bind(stamp).execute(&mut *tx).await,
                Some(old) => sqlx::query(TIMER_MOVE).bind(next_ms).bind(stamp).bind(key).bind(old).execute(&mut *tx).await,
            }.map_err(map_err)?.rows_affected() == 1;
            if !moved {
                return Ok(false);
            }
            if let Some(ev) = fire {
                insert_event!(ev).execute(&mut *tx).await.map_err(map_err)?;
            }
            tx.commit().await.map_err(map_err)?;
            Ok(true)
        })
    }

    async fn timer_next(&self, key: &str) -> Result<Option<(i64, String)>, MetaError> {
        on_pool!(self, p => {
            let row = sqlx::query(TIMER_GET).bind(key).fetch_optional(p).await.map_err(map_err)?;
            row.map(|r| Ok((r.int("next_ms")?, r.text("stamp")?))).transpose()
        })
    }
}
