//! The durable-async and timer benchmark (`scripts/bench.sh async`). One openfc (SQLite, the embedded
//! default; PostgreSQL too when `--database-url` names an empty database) with `--max-instances 1` (so
//! every event of a function runs in its one instance) and `--timer-min-interval 1`. The function is this
//! very binary as a custom runtime (see `runtime`) with `BENCH_RECORD=1`: it counts and records every
//! request it serves — its request id and the wall-clock time it arrived — and hands the records over
//! to synchronous `bench:` control invocations. The event id of an async invocation is the request id
//! of its 202 and of the runtime's request, so the two sides meet by id; host and instance share one
//! clock. No log scraping.
//!
//! 1. Durable accepts: 16 workers, each on its own keep-alive connection, send signed InvokeFunction
//!    requests with `X-Fc-Invocation-Type: Async` for 1 s of warm-up + N s; the figure is 202s per
//!    measured second (every 202 means the event is committed). The baseline, in the same run and on
//!    the same openfc: synchronous InvokeFunction of the same warm function at the same concurrency.
//! 2. Completion: a burst of `BURST` async events sent as fast as 16 connections go, after the queue has
//!    drained; the figure is `BURST` / (the runtime's last recorded start − the first send). The events
//!    run while the rest are still being accepted, as they would.
//! 3. 202 → start: the runtime's arrival time of an event minus the time the client had its 202. Idle:
//!    `IDLE_EVENTS` events one at a time, `IDLE_SPACING` apart. Under load: every event accepted in the
//!    measured seconds of figure 1 (while the queue is fuller than the workers drain it, this is mostly
//!    the time waiting in the queue).
//! 4. Timer jitter: two triggers fire for `TIMER_RUN`, each on its own warm function: `@every 1s` and
//!    the cron `* * * * * *`; the figure is the runtime's start of each fire minus the event's
//!    `triggerTime`. `triggerTime` has whole seconds: for the cron, whose ticks are whole seconds, that
//!    is the lateness; an `@every` schedule counts from when the trigger was created, so its ticks fall
//!    within seconds and the difference also holds that fraction (up to 1 s) — its lateness is also shown
//!    against the exact tick, which openfc puts in the event id (`timer-{name}-{unix ms}`).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hyper::Method;

use crate::client::{Conn, Signer};
use crate::invoke::{bootstrap_zip, log_rows};
use crate::load::{self, Call};
use crate::procs::Openfc;
use crate::runtime::now_us;
use crate::{Row, check, info, us};

mod timers;
use timers::timers;

const SERVICES: &str = "/2016-08-15/services";
const FUNCTIONS: &str = "/2016-08-15/services/bench/functions";
const EVENT: &[u8] = br#"{"hello":"openfc"}"#;
const CONCURRENCY: usize = 16;
const IDLE_EVENTS: usize = 100;
const IDLE_SPACING: Duration = Duration::from_millis(25);
const BURST: usize = 5000;
const TIMER_RUN: Duration = Duration::from_secs(10);
/// How long accepted events may take to all run before the benchmark gives up.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
const SERVER_FLAGS: &[&str] = &["--max-instances", "1", "--timer-min-interval", "1"];

fn invoke_path(function: &str) -> String {
    format!("{FUNCTIONS}/{function}/invocations")
}

/// Signed microseconds as milliseconds.
fn ms(us: i64) -> String {
    if us.abs() < 10_000 { format!("{:.2} ms", us as f64 / 1e3) } else { format!("{:.1} ms", us as f64 / 1e3) }
}

/// The `p`th percentile of sorted values (0 when empty).
fn pct(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 * p / 100.0) as usize).min(sorted.len() - 1)]
}

/// Runs the part on SQLite, then on PostgreSQL when a database URL is given.
pub async fn run(openfc_bin: &Path, seconds: Duration, database_url: Option<&str>) -> anyhow::Result<Vec<Row>> {
    let zip = tokio::task::spawn_blocking(bootstrap_zip).await??;
    let mut rows = once(openfc_bin, seconds, &zip, "sqlite", &[]).await?;
    if let Some(url) = database_url {
        rows.extend(once(openfc_bin, seconds, &zip, "postgres", &["--database-url", url]).await?);
    }
    Ok(rows)
}

async fn once(openfc_bin: &Path, seconds: Duration, zip: &[u8], backend: &'static str, extra: &[&str]) -> anyhow::Result<Vec<Row>> {
    let flags: Vec<&str> = SERVER_FLAGS.iter().copied().chain(extra.iter().copied()).collect();
    let openfc = Openfc::start(openfc_bin, &flags, None).await?;
    eprintln!("[{backend}] openfc on {} ({}), data in {}", openfc.addr(), flags.join(" "), openfc.dir.path().display());
    let signer = Arc::new(Signer::from_credentials(&openfc.credentials, openfc.addr())?);
    let mut rows = Vec::new();
    let setup = async {
        let mut conn = Conn::open(signer.addr).await?;
        conn.call_ok(signer.request(Method::POST, SERVICES, Bytes::from(r#"{"serviceName":"bench"}"#))).await?;
        for name in ["echo", "tick", "cron"] {
            conn.call_ok(signer.request(Method::POST, FUNCTIONS, create_body(name, zip))).await?;
        }
        // The instance the async events run in (the control request is a synchronous invocation).
        Probe::open(&signer, "echo").await?.served().await?;
        anyhow::Ok(())
    };
    setup.await.map_err(|e| e.context(openfc.log_tail()))?;
    let label = |s: &str| format!("[{backend}] {s}");
    match throughput(&openfc, &signer, seconds, backend).await {
        Ok(r) => rows.extend(r),
        Err(e) => {
            eprintln!("{} failed: {e:#}\n{}", label("accepts and completion"), openfc.log_tail());
            rows.push(check(label("async accepts and completion"), "FAILED (see above)", "", false));
        }
    }
    match idle(&signer, backend).await {
        Ok(r) => rows.extend(r),
        Err(e) => {
            eprintln!("{} failed: {e:#}\n{}", label("idle 202 → start"), openfc.log_tail());
            rows.push(check(label("202 → start, idle"), "FAILED (see above)", "", false));
        }
    }
    match timers(&signer, backend).await {
        Ok(r) => rows.extend(r),
        Err(e) => {
            eprintln!("{} failed: {e:#}\n{}", label("timers"), openfc.log_tail());
            rows.push(check(label("timer jitter"), "FAILED (see above)", "", false));
        }
    }
    rows.extend(log_rows(&format!("[{backend}] openfc"), openfc));
    Ok(rows)
}

/// A custom-runtime function of this binary, recording (`BENCH_RECORD=1`), one instance serving up to 100
/// requests at once (16 async workers, 16 synchronous workers of the baseline, the control requests).
fn create_body(name: &str, zip: &[u8]) -> Bytes {
    serde_json::json!({
        "functionName": name,
        "runtime": "custom",
        "handler": "h",
        "timeout": 10,
        "instanceConcurrency": 100,
        "environmentVariables": {"BENCH_RECORD": "1"},
        "code": {"zipFile": STANDARD.encode(zip)},
    })
    .to_string()
    .into()
}

/// What the runtime recorded of one request.
struct Record {
    id: String,
    start_us: i64,
    /// The body, when it was a timer event.
    timer: Option<String>,
}

/// Control requests to a recording function's instance.
struct Probe {
    signer: Arc<Signer>,
    conn: Conn,
    path: String,
}

impl Probe {
    async fn open(signer: &Arc<Signer>, function: &str) -> anyhow::Result<Self> {
        Ok(Self { signer: signer.clone(), conn: Conn::open(signer.addr).await?, path: invoke_path(function) })
    }

    async fn control(&mut self, command: &'static [u8]) -> anyhow::Result<serde_json::Value> {
        let req = self.signer.request(Method::POST, &self.path, Bytes::from_static(command));
        let (status, headers, body) = self.conn.call_full(req).await?;
        if status != 200 || headers.contains_key("x-fc-error-type") {
            bail!("control request {}: HTTP {status}: {}", String::from_utf8_lossy(command), String::from_utf8_lossy(&body));
        }
        serde_json::from_slice(&body).with_context(|| format!("control answer {}", String::from_utf8_lossy(&body)))
    }

    /// Requests the instance has served (control requests not counted).
    async fn served(&mut self) -> anyhow::Result<u64> {
        self.control(b"bench:count").await?["served"].as_u64().context("no served count")
    }

    /// Polls until the instance has served `target` requests; returns when it saw that.
    async fn wait_served(&mut self, target: u64) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            let served = self.served().await?;
            if served >= target {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                bail!("only {served} of {target} requests ran within {} s", RUN_TIMEOUT.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Every record so far (and forgets them in the instance).
    async fn drain(&mut self) -> anyhow::Result<Vec<Record>> {
        let mut out = Vec::new();
        loop {
            let page = self.control(b"bench:drain").await?;
            for r in page["records"].as_array().context("no records")? {
                out.push(Record {
                    id: r[0].as_str().unwrap_or("").to_owned(),
                    start_us: r[1].as_i64().context("record without a start")?,
                    timer: r[2].as_str().map(str::to_owned),
                });
            }
            if page["left"].as_u64() == Some(0) {
                return Ok(out);
            }
        }
    }
}

/// The first start of each request id, and how many records repeated an id (an event run twice).
fn first_starts(records: &[Record]) -> (HashMap<&str, i64>, usize) {
    let (mut starts, mut repeats) = (HashMap::<&str, i64>::new(), 0);
    for r in records {
        match starts.get_mut(r.id.as_str()) {
            Some(s) => {
                repeats += 1;
                *s = (*s).min(r.start_us);
            }
            None => {
                starts.insert(&r.id, r.start_us);
            }
        }
    }
    (starts, repeats)
}

/// 202 → start delays (sorted, µs) of accepted events, and how many of them never ran.
fn delays(accepted: &[Accepted], starts: &HashMap<&str, i64>) -> (Vec<i64>, usize) {
    let mut out = Vec::with_capacity(accepted.len());
    let mut missing = 0;
    for a in accepted {
        match starts.get(a.id.as_str()) {
            Some(s) => out.push(s - a.at_us),
            None => missing += 1,
        }
    }
    out.sort_unstable();
    (out, missing)
}

/// How fast the events that started after `from_us` ran: their number over the time to the last start.
fn drain_rate(records: &[Record], from_us: i64) -> String {
    let after: Vec<i64> = records.iter().map(|r| r.start_us).filter(|s| *s >= from_us).collect();
    match after.iter().max() {
        Some(last) if *last > from_us => {
            let secs = (last - from_us) as f64 / 1e6;
            format!("{:.0}/s ({} events in {secs:.2} s)", after.len() as f64 / secs, after.len())
        }
        _ => "- (none left)".to_owned(),
    }
}

/// One 202: the event's id and when the client had the answer (µs since the epoch).
struct Accepted {
    id: String,
    at_us: i64,
}

/// One async InvokeFunction that must be answered 202.
async fn send_async(conn: &mut Conn, signer: &Signer, path: &str) -> anyhow::Result<Accepted> {
    let req = signer.request_with(Method::POST, path, Bytes::from_static(EVENT), &[("x-fc-invocation-type", "Async")]);
    let (status, headers, body) = conn.call_full(req).await?;
    let at_us = now_us();
    if status != 202 {
        bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
    }
    let id = headers.get("x-fc-request-id").and_then(|v| v.to_str().ok()).context("a 202 without X-Fc-Request-Id")?;
    Ok(Accepted { id: id.to_owned(), at_us })
}

/// What one async load run sent.
#[derive(Default)]
struct Sent {
    /// Every 202, warm-up included.
    all: Vec<Accepted>,
    /// The 202s of requests started in the measured seconds.
    measured: Vec<Accepted>,
    /// Latencies of the measured 202s.
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
}

impl Sent {
    fn merge(&mut self, other: Sent) {
        self.all.extend(other.all);
        self.measured.extend(other.measured);
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
    }
}

/// `CONCURRENCY` closed-loop workers sending async invocations: until `end`, or `total` in all.
async fn async_load(signer: &Arc<Signer>, path: &str, warm_end: Instant, end: Option<Instant>, total: usize) -> anyhow::Result<Sent> {
    let mut conns = Vec::with_capacity(CONCURRENCY);
    for _ in 0..CONCURRENCY {
        conns.push(Conn::open(signer.addr).await?);
    }
    let mut tasks = Vec::new();
    for (i, mut conn) in conns.into_iter().enumerate() {
        let per_worker = total / CONCURRENCY + usize::from(i < total % CONCURRENCY);
        let (signer, path) = (signer.clone(), path.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut out = Sent::default();
            for _ in 0..per_worker {
                let start = Instant::now();
                if end.is_some_and(|end| start >= end) {
                    break;
                }
                match send_async(&mut conn, &signer, &path).await {
                    Ok(a) => {
                        if start >= warm_end {
                            out.latencies.push(start.elapsed());
                            out.measured.push(Accepted { id: a.id.clone(), at_us: a.at_us });
                        }
                        out.all.push(a);
                    }
                    Err(e) => {
                        out.errors += 1;
                        out.first_error.get_or_insert(format!("{e:#}"));
                        conn = Conn::open(signer.addr).await?;
                    }
                }
            }
            anyhow::Ok(out)
        }));
    }
    let mut sent = Sent::default();
    for t in tasks {
        sent.merge(t.await??);
    }
    sent.latencies.sort_unstable();
    Ok(sent)
}

/// Figures 1, 2 and 3 under load.
async fn throughput(openfc: &Openfc, signer: &Arc<Signer>, seconds: Duration, backend: &str) -> anyhow::Result<Vec<Row>> {
    let label = |s: String| format!("[{backend}] {s}");
    let path = invoke_path("echo");
    let mut probe = Probe::open(signer, "echo").await?;
    let mut rows = Vec::new();

    eprintln!("[{backend}] load: synchronous InvokeFunction (baseline), concurrency {CONCURRENCY}, 1 s warm-up + {} s", seconds.as_secs());
    let sync = load::run(Call::post(signer, &path, EVENT), CONCURRENCY, openfc.pid(), Duration::from_secs(1), seconds).await?;
    if let Some(e) = &sync.first_error {
        eprintln!("  {} errors; first: {e}", sync.errors);
    }
    probe.drain().await?;

    eprintln!("[{backend}] load: async InvokeFunction, concurrency {CONCURRENCY}, 1 s warm-up + {} s", seconds.as_secs());
    let base = probe.served().await?;
    let warm_end = Instant::now() + Duration::from_secs(1);
    let end = warm_end + seconds;
    let load = async_load(signer, &path, warm_end, Some(end), usize::MAX);
    let window = async {
        tokio::time::sleep_until(warm_end.into()).await;
        let from = now_us();
        tokio::time::sleep_until(end.into()).await;
        (from, now_us())
    };
    let (sent, (from_us, to_us)) = tokio::join!(load, window);
    let sent = sent?;
    if let Some(e) = &sent.first_error {
        eprintln!("  {} errors; first: {e}", sent.errors);
    }
    let per_sec = sent.measured.len() as f64 / seconds.as_secs_f64();
    eprintln!("[{backend}] waiting for the {} accepted events to run", sent.all.len());
    let drained = probe.wait_served(base + sent.all.len() as u64).await?;
    let records = probe.drain().await?;
    let (starts, repeats) = first_starts(&records);
    let (under_load, missing_load) = delays(&sent.measured, &starts);
    let (_, missing_all) = delays(&sent.all, &starts);
    let ran_in_window = records.iter().filter(|r| (from_us..to_us).contains(&r.start_us)).count();

    rows.push(check(
        label(format!("durable async accepts/s (c={CONCURRENCY}, 202 = committed)")),
        format!("{per_sec:.0}/s, 202 latency p50 {} p99 {}", us(load::percentile(&sent.latencies, 50.0)), us(load::percentile(&sent.latencies, 99.0))),
        "≥ 2000/s",
        per_sec >= 2000.0,
    ));
    rows.push(check(label("async requests not answered 202".into()), sent.errors.to_string(), "0", sent.errors == 0));
    rows.push(info(
        label(format!("sync InvokeFunction, same function, c={CONCURRENCY} (baseline)")),
        format!("{:.0}/s, p50 {} p99 {}, {} errors", sync.per_sec, us(sync.p50), us(sync.p99), sync.errors),
    ));
    rows.push(info(label("async accepts/s ÷ sync invokes/s".into()), format!("{:.2}", per_sec / sync.per_sec.max(f64::MIN_POSITIVE))));
    rows.push(info(
        label("events run per second during the async load".into()),
        format!("{:.0}/s ({ran_in_window} started in the {} measured s)", ran_in_window as f64 / seconds.as_secs_f64(), seconds.as_secs()),
    ));
    rows.push(info(
        label("queue drained after the async load ended".into()),
        format!("{:.1} s later ({} events accepted in all)", drained.saturating_duration_since(end).as_secs_f64(), sent.all.len()),
    ));
    rows.push(info(label("backlog run per second after the async load (no new events)".into()), drain_rate(&records, to_us)));
    rows.push(info(
        label("202 → start under load (events accepted in the measured s)".into()),
        format!("p50 {}, p99 {}, max {}", ms(pct(&under_load, 50.0)), ms(pct(&under_load, 99.0)), ms(*under_load.last().unwrap_or(&0))),
    ));

    eprintln!("[{backend}] burst of {BURST} async events, {CONCURRENCY} connections");
    let base = probe.served().await?;
    let first_send = now_us();
    let burst = async_load(signer, &path, Instant::now(), None, BURST).await?;
    if let Some(e) = &burst.first_error {
        eprintln!("  {} errors; first: {e}", burst.errors);
    }
    let k = burst.all.len();
    let last_202 = burst.all.iter().map(|a| a.at_us).max().unwrap_or(first_send);
    probe.wait_served(base + k as u64).await?;
    let records_burst = probe.drain().await?;
    let (starts_burst, repeats_burst) = first_starts(&records_burst);
    let ids: HashSet<&str> = burst.all.iter().map(|a| a.id.as_str()).collect();
    let last_start = starts_burst.iter().filter(|(id, _)| ids.contains(*id)).map(|(_, s)| *s).max().unwrap_or(first_send);
    let missing_burst = ids.iter().filter(|id| !starts_burst.contains_key(*id)).count();
    let after_last_202 = drain_rate(&records_burst, last_202);
    let took = (last_start - first_send).max(1);
    rows.push(info(
        label(format!("burst of {k} async events: completed per second")),
        format!(
            "{:.0}/s (all accepted {} and all started {} after the first send)",
            k as f64 / (took as f64 / 1e6),
            ms(last_202 - first_send),
            ms(took)
        ),
    ));
    rows.push(info(label("burst: events run per second after its last 202 (no new events)".into()), after_last_202));
    let accepted = sent.all.len() + k;
    let missing = missing_all + missing_burst;
    rows.push(check(
        label("accepted events that ran (async load + burst)".into()),
        format!("{}/{accepted}, {} ran twice", accepted - missing, repeats + repeats_burst),
        "all",
        missing == 0,
    ));
    if missing_load > 0 {
        eprintln!("[{backend}] {missing_load} events accepted under load were not seen running");
    }
    Ok(rows)
}

/// Figure 3, idle: one event at a time.
async fn idle(signer: &Arc<Signer>, backend: &str) -> anyhow::Result<Vec<Row>> {
    eprintln!("[{backend}] {IDLE_EVENTS} async events one at a time, {} ms apart", IDLE_SPACING.as_millis());
    let path = invoke_path("echo");
    let mut probe = Probe::open(signer, "echo").await?;
    probe.drain().await?;
    let base = probe.served().await?;
    let mut conn = Conn::open(signer.addr).await?;
    let mut sent = Vec::with_capacity(IDLE_EVENTS);
    for _ in 0..IDLE_EVENTS {
        sent.push(send_async(&mut conn, signer, &path).await?);
        tokio::time::sleep(IDLE_SPACING).await;
    }
    probe.wait_served(base + IDLE_EVENTS as u64).await?;
    let records = probe.drain().await?;
    let (starts, _) = first_starts(&records);
    let (d, missing) = delays(&sent, &starts);
    if missing > 0 {
        bail!("{missing} of {IDLE_EVENTS} idle events were not seen running");
    }
    let p50 = pct(&d, 50.0);
    Ok(vec![check(
        format!("[{backend}] 202 → start, idle ({IDLE_EVENTS} events one at a time)"),
        format!("p50 {}, p99 {}, min {}", ms(p50), ms(pct(&d, 99.0)), ms(d[0])),
        "p50 < 10 ms",
        p50 < 10_000,
    )])
}
