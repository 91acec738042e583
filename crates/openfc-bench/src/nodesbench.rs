//! The many-nodes benchmark (`scripts/bench.sh nodes`; issue 10 item 7). Release binaries, in one run:
//!
//! 1. SQLite vs PostgreSQL, one node each: closed-loop loads at concurrency 16 of a signed GetFunction, of a
//!    write (UpdateFunction with a new description each time; each worker updates its own function, so the
//!    figure is write throughput, not waiting on one row's lock) and of a warm InvokeFunction of a trivial
//!    custom runtime (this binary, see `runtime`; `instanceConcurrency` 16, one instance per node). The
//!    PostgreSQL node keeps its code in the S3 bucket (the store nodes share); none of these three calls reads
//!    a package, so the comparison is that of the databases. Both nodes run side by side and the loads
//!    alternate between them (`ROUNDS`), each figure the best of its rounds.
//! 2. One node vs two nodes on PostgreSQL + S3: a second node joins the first (same database, bucket, master
//!    key and AccessKey) and the same loads run against node A alone and spread round-robin over A and B
//!    (request k of a worker goes to node (worker + k) mod 2, one keep-alive connection per worker and
//!    node), alternating. B is up, idle and listening during A's runs.
//! 3. Invalidation latency: two fresh nodes with `--meta-cache-ttl-ms 60000` (so only a notification can
//!    make a write visible within a minute). `WRITES` times: UpdateFunction on A with a new description,
//!    then GetFunction on B in a tight loop (one connection, one request at a time) until it shows it; the
//!    figure is the first such answer minus A's 200. Against the documented bound of 100 ms.
//!
//! All PostgreSQL nodes share the database given (empty at the start) and the `--code-store s3://BUCKET`
//! given, the S3 endpoint and keys coming from `OPENFC_S3_*` in the environment (scripts/bench.sh starts a
//! private PostgreSQL cluster and moto when none is given). CPU per request counts openfc's processes and
//! their function instances, not PostgreSQL's.

use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};

use crate::client::{Conn, Signer, plain_get};
use crate::invoke::{EVENT, FUNCTIONS, bootstrap_zip, create_body, invoke_once, invoke_path, log_rows, setup};
use crate::load::percentile;
use crate::procs::{self, Openfc, Server, tree_cpu_time};
use crate::{Row, check, info, us};

const CONCURRENCY: usize = 16;
/// Rounds of each comparison, run in alternation; each figure is the best of its rounds (the machine's other
/// load moves single runs by 10–20%).
pub(crate) const ROUNDS: usize = 2;
/// Functions `w0..` the write load updates, one per worker.
const WRITERS: usize = CONCURRENCY;
/// Measured writes of the invalidation figure, after `WARM_WRITES` unmeasured ones.
const WRITES: usize = 250;
const WARM_WRITES: usize = 10;
/// The documented bound for a write on one node to be visible on another.
const BOUND: Duration = Duration::from_millis(100);
/// How long a reader polls before the write counts as not seen.
const SEEN_TIMEOUT: Duration = Duration::from_secs(5);
const LONG_TTL: &[&str] = &["--meta-cache-ttl-ms", "60000", "--key-cache-ttl", "60"];

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Get,
    Update,
    Invoke,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Get, Kind::Update, Kind::Invoke];

    fn label(self) -> &'static str {
        match self {
            Kind::Get => "signed GetFunction",
            Kind::Update => "UpdateFunction (new description each)",
            Kind::Invoke => "warm InvokeFunction",
        }
    }

    /// Request `k` of worker `w`, signed now.
    fn request(self, signer: &Signer, w: usize, k: u64) -> Request<Full<Bytes>> {
        match self {
            Kind::Get => signer.request(Method::GET, &format!("{FUNCTIONS}/echo"), Bytes::new()),
            Kind::Update => {
                let body = format!(r#"{{"description":"worker {w} write {k}"}}"#);
                signer.request(Method::PUT, &format!("{FUNCTIONS}/w{}", w % WRITERS), body.into())
            }
            Kind::Invoke => signer.request(Method::POST, &invoke_path("echo"), Bytes::from_static(EVENT)),
        }
    }
}

/// Where a load goes: one node, or several in round-robin.
struct Target {
    name: &'static str,
    signers: Vec<Arc<Signer>>,
    pids: Vec<u32>,
}

impl Target {
    fn of(name: &'static str, nodes: &[&Openfc], signers: &[&Arc<Signer>]) -> Self {
        Self { name, signers: signers.iter().map(|s| (*s).clone()).collect(), pids: nodes.iter().map(|n| n.pid()).collect() }
    }
}

/// What one load run measured.
struct Measured {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    /// openfc's CPU (its processes and their instances) per recorded request.
    cpu: Duration,
    errors: usize,
    first_error: Option<String>,
}

#[derive(Default)]
struct WorkerOut {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
}

/// `CONCURRENCY` closed-loop workers, each with a keep-alive connection to every node of `target`; request
/// k of worker w goes to node (w + k) mod n. Requests started in the warm-up are not recorded.
async fn spread(kind: Kind, target: &Target, warm_up: Duration, seconds: Duration) -> anyhow::Result<Measured> {
    let warm_end = Instant::now() + warm_up;
    let end = warm_end + seconds;
    let mut handles = Vec::with_capacity(CONCURRENCY);
    for w in 0..CONCURRENCY {
        let signers = target.signers.clone();
        handles.push(tokio::spawn(async move {
            let mut conns = Vec::with_capacity(signers.len());
            for s in &signers {
                conns.push(Conn::open(s.addr).await?);
            }
            let mut out = WorkerOut { latencies: Vec::with_capacity(1 << 15), ..WorkerOut::default() };
            let mut k: u64 = 0;
            loop {
                let start = Instant::now();
                if start >= end {
                    return anyhow::Ok(out);
                }
                let i = (w + k as usize) % signers.len();
                let req = kind.request(&signers[i], w, k);
                k += 1;
                let result = conns[i].call_full(req).await;
                let elapsed = start.elapsed();
                let error = match result {
                    Ok((status, headers, body)) if (200..300).contains(&status) => headers
                        .get("x-fc-error-type")
                        .map(|t| format!("function error {t:?}: {}", String::from_utf8_lossy(&body))),
                    Ok((status, _, body)) => Some(format!("HTTP {status}: {}", String::from_utf8_lossy(&body))),
                    Err(e) => {
                        conns[i] = Conn::open(signers[i].addr).await?;
                        Some(format!("transport: {e:#}"))
                    }
                };
                match error {
                    Some(e) => {
                        out.errors += 1;
                        out.first_error.get_or_insert(e);
                    }
                    None if start >= warm_end => out.latencies.push(elapsed),
                    None => {}
                }
            }
        }));
    }
    let cpu = |pids: &[u32]| pids.iter().map(|p| tree_cpu_time(*p)).sum::<Duration>();
    tokio::time::sleep_until(warm_end.into()).await;
    let cpu0 = cpu(&target.pids);
    tokio::time::sleep_until(end.into()).await;
    let cpu1 = cpu(&target.pids);
    let mut all = WorkerOut::default();
    for h in handles {
        let out = h.await??;
        all.latencies.extend(out.latencies);
        all.errors += out.errors;
        all.first_error = all.first_error.or(out.first_error);
    }
    all.latencies.sort_unstable();
    let n = all.latencies.len().max(1);
    Ok(Measured {
        per_sec: all.latencies.len() as f64 / seconds.as_secs_f64(),
        p50: percentile(&all.latencies, 50.0),
        p99: percentile(&all.latencies, 99.0),
        cpu: cpu1.saturating_sub(cpu0) / n as u32,
        errors: all.errors,
        first_error: all.first_error,
    })
}

/// Each kind of load against each target, `ROUNDS` times in alternation; rows with the best of each (highest
/// rate; errors of all rounds summed) and the ratio of the second target's rate to the first's.
async fn compare(part: &str, targets: &[Target], seconds: Duration, ratio_note: &str) -> anyhow::Result<(Vec<Row>, usize)> {
    let mut best: HashMap<(Kind, usize), (Measured, usize)> = HashMap::new();
    for round in 1..=ROUNDS {
        for kind in Kind::ALL {
            for (t, target) in targets.iter().enumerate() {
                eprintln!(
                    "[{part}] load: {} on {}, c={CONCURRENCY}, round {round}/{ROUNDS}, 1 s warm-up + {} s",
                    kind.label(),
                    target.name,
                    seconds.as_secs()
                );
                let m = spread(kind, target, Duration::from_secs(1), seconds).await?;
                if let Some(e) = &m.first_error {
                    eprintln!("  {} errors; first: {e}", m.errors);
                }
                let errors = m.errors + best.get(&(kind, t)).map_or(0, |b| b.1);
                let keep_old = best.get(&(kind, t)).is_some_and(|(b, _)| b.per_sec >= m.per_sec);
                if keep_old {
                    best.get_mut(&(kind, t)).expect("present").1 = errors;
                } else {
                    best.insert((kind, t), (m, errors));
                }
            }
        }
    }
    let mut rows = Vec::new();
    let mut total_errors = 0;
    for kind in Kind::ALL {
        for (t, target) in targets.iter().enumerate() {
            let (m, errors) = &best[&(kind, t)];
            total_errors += errors;
            rows.push(info(
                format!("[{part}] c={CONCURRENCY} {}, {} (best of {ROUNDS})", kind.label(), target.name),
                format!(
                    "{:.0} req/s, p50 {}, p99 {}, openfc cpu {:.0} µs/req{}",
                    m.per_sec,
                    us(m.p50),
                    us(m.p99),
                    m.cpu.as_secs_f64() * 1e6,
                    if *errors > 0 { format!(", {errors} errors") } else { String::new() }
                ),
            ));
        }
        if let [first, second] = targets {
            let ratio = best[&(kind, 1)].0.per_sec / best[&(kind, 0)].0.per_sec.max(f64::MIN_POSITIVE);
            rows.push(info(format!("[{part}] c={CONCURRENCY} {}: {} / {}{ratio_note}", kind.label(), second.name, first.name), format!("{ratio:.2}")));
        }
    }
    Ok((rows, total_errors))
}

/// The bench service, the `echo` function (one warm instance) and the `w*` functions the writes update.
async fn populate(node: &Openfc, zip: &[u8]) -> anyhow::Result<Arc<Signer>> {
    let (signer, mut conn) = setup(node).await?;
    conn.call_ok(signer.request(Method::POST, FUNCTIONS, create_body("echo", "custom", "h", zip, CONCURRENCY as u32))).await?;
    let small = crate::package::random_zip(1024)?;
    for w in 0..WRITERS {
        conn.call_ok(signer.request(Method::POST, FUNCTIONS, crate::package::create_body(&format!("w{w}"), &small))).await?;
    }
    // One instance before the load: 16 requests at an empty pool would each start one.
    invoke_once(&mut conn, &signer, "echo").await?;
    Ok(signer)
}

/// What a node needs to join a cluster started by another: its master key and the account's AccessKey.
struct Membership {
    master_key: Vec<u8>,
    credentials: serde_json::Value,
    flags: Vec<String>,
}

impl Membership {
    fn of(first: &Openfc, flags: &[&str]) -> anyhow::Result<Self> {
        let master_key = std::fs::read(first.dir.path().join("data/master.key")).context("reading the first node's master key")?;
        Ok(Self { master_key, credentials: first.credentials.clone(), flags: flags.iter().map(|s| (*s).to_owned()).collect() })
    }

    /// Starts a node on a free port with its own data dir holding a copy of the master key.
    async fn join(&self, bin: &Path, extra: &[&str]) -> anyhow::Result<Openfc> {
        let dir = tempfile::Builder::new().prefix("openfc-bench-").tempdir()?;
        let data = dir.path().join("data");
        std::fs::DirBuilder::new().mode(0o700).create(&data)?;
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(data.join("master.key"))?.write_all(&self.master_key)?;
        let log = std::fs::File::create(dir.path().join("openfc.log"))?;
        let port = procs::free_port()?;
        let child = std::process::Command::new(bin)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(&data)
            .args(&self.flags)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut server = Server { name: "openfc", addr: ([127, 0, 0, 1], port).into(), child };
        server.wait_healthy().await.map_err(|e| e.context(procs::log_tail(dir.path())))?;
        Ok(Openfc { server, credentials: self.credentials.clone(), dir })
    }
}

/// `node.liveNodes` of `/health`.
async fn live_nodes(node: &Openfc) -> anyhow::Result<u64> {
    let mut conn = Conn::open(node.addr()).await?;
    let (status, body) = conn.call(plain_get(node.addr(), "/health")).await?;
    if status != 200 {
        bail!("GET /health: HTTP {status}");
    }
    let health: serde_json::Value = serde_json::from_slice(&body)?;
    health["node"]["liveNodes"].as_u64().context("/health shows no node.liveNodes")
}

/// Waits until every node sees exactly `nodes.len()` live nodes.
async fn wait_for_each_other(nodes: &[&Openfc]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut seen = Vec::new();
        for n in nodes {
            seen.push(live_nodes(n).await?);
        }
        if seen.iter().all(|s| *s == nodes.len() as u64) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("after 20 s the nodes see {seen:?} live nodes, not {}", nodes.len());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn run(openfc_bin: &Path, seconds: Duration, database_url: &str, code_store: &str) -> anyhow::Result<Vec<Row>> {
    if !code_store.starts_with("s3://") {
        bail!("the nodes part needs --code-store s3://BUCKET (nodes share code through it), not {code_store:?}");
    }
    let zip = tokio::task::spawn_blocking(bootstrap_zip).await??;
    let pg_flags = ["--database-url", database_url, "--code-store", code_store];
    let mut rows = Vec::new();
    let mut errors = 0;

    // 1. SQLite vs PostgreSQL.
    let sqlite = Openfc::start(openfc_bin, &[], None).await?;
    let a = Openfc::start(openfc_bin, &pg_flags, None).await?;
    eprintln!(
        "SQLite node on {} (data in {}), PostgreSQL + S3 node A on {} (data in {})",
        sqlite.addr(),
        sqlite.dir.path().display(),
        a.addr(),
        a.dir.path().display()
    );
    let sqlite_signer = populate(&sqlite, &zip).await.map_err(|e| e.context(sqlite.log_tail()))?;
    let a_signer = populate(&a, &zip).await.map_err(|e| e.context(a.log_tail()))?;
    let targets =
        [Target::of("SQLite", &[&sqlite], &[&sqlite_signer]), Target::of("PostgreSQL + S3", &[&a], &[&a_signer])];
    let (r, e) = compare("1 node", &targets, seconds, "").await.map_err(|e| e.context(a.log_tail()))?;
    rows.extend(r);
    errors += e;
    drop(targets);
    rows.push(load_average("1 node"));
    rows.extend(log_rows("SQLite node", sqlite));

    // 2. One node vs two.
    let membership = Membership::of(&a, &pg_flags)?;
    let b = membership.join(openfc_bin, &[]).await?;
    eprintln!("PostgreSQL + S3 node B on {} (data in {})", b.addr(), b.dir.path().display());
    wait_for_each_other(&[&a, &b]).await?;
    let b_signer = Arc::new(a_signer.for_addr(b.addr()));
    {
        let mut conn = Conn::open(b.addr()).await?;
        invoke_once(&mut conn, &b_signer, "echo").await.map_err(|e| e.context(b.log_tail()))?;
    }
    let targets = [
        Target::of("node A alone", &[&a], &[&a_signer]),
        Target::of("A + B round-robin", &[&a, &b], &[&a_signer, &b_signer]),
    ];
    let (r, e) = compare("PostgreSQL", &targets, seconds, " (2 nodes on the same 2 cores)").await.map_err(|e| e.context(b.log_tail()))?;
    rows.extend(r);
    errors += e;
    drop(targets);
    rows.push(load_average("PostgreSQL"));
    rows.push(check("non-2xx or failed requests under load (all loads above)", errors.to_string(), "0", errors == 0));
    rows.extend(log_rows("PostgreSQL node A", a));
    rows.extend(log_rows("PostgreSQL node B", b));

    // 3. Invalidation latency.
    let c = membership.join(openfc_bin, LONG_TTL).await?;
    let d = membership.join(openfc_bin, LONG_TTL).await?;
    eprintln!(
        "invalidation: nodes A' on {} and B' on {} with {} (data in {} and {})",
        c.addr(),
        d.addr(),
        LONG_TTL.join(" "),
        c.dir.path().display(),
        d.dir.path().display()
    );
    wait_for_each_other(&[&c, &d]).await?;
    match invalidation(&membership, &c, &d).await {
        Ok(r) => rows.extend(r),
        Err(e) => {
            eprintln!("invalidation latency failed: {e:#}\n{}\n{}", c.log_tail(), d.log_tail());
            rows.push(check("write on A → visible on B", "FAILED (see above)", "", false));
        }
    }
    rows.extend(log_rows("long-TTL node A'", c));
    rows.extend(log_rows("long-TTL node B'", d));
    Ok(rows)
}

/// The machine's load averages after a part: on 2 CPUs, anything much above what the part itself runs (its
/// nodes, PostgreSQL, the load generator) is other work (builds) sharing the cores with the measurement.
fn load_average(part: &str) -> Row {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let fields: Vec<&str> = text.split_whitespace().take(3).collect();
    info(format!("[{part}] machine load average 1/5/15 min after the loads ({} CPUs)", std::thread::available_parallelism().map_or(0, |n| n.get())), fields.join(" / "))
}

/// The description GetFunction answers.
async fn description(conn: &mut Conn, signer: &Signer, path: &str) -> anyhow::Result<String> {
    let body = conn.call_ok(signer.request(Method::GET, path, Bytes::new())).await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(v["description"].as_str().unwrap_or("").to_owned())
}

/// Figure 3: `WARM_WRITES` + `WRITES` writes on `writer`, each polled for on `reader`.
async fn invalidation(membership: &Membership, writer: &Openfc, reader: &Openfc) -> anyhow::Result<Vec<Row>> {
    let ws = Arc::new(Signer::from_credentials(&membership.credentials, writer.addr())?);
    let rs = Arc::new(ws.for_addr(reader.addr()));
    let path = format!("{FUNCTIONS}/inval");
    let (mut wc, mut rc) = (Conn::open(ws.addr).await?, Conn::open(rs.addr).await?);
    let small = crate::package::random_zip(1024)?;
    wc.call_ok(ws.request(Method::POST, FUNCTIONS, crate::package::create_body("inval", &small))).await?;
    wc.call_ok(ws.request(Method::PUT, &path, Bytes::from(r#"{"description":"d0"}"#))).await?;
    // B reads (and caches, for 60 s) the first description.
    let first = description(&mut rc, &rs, &path).await?;
    if first != "d0" {
        bail!("node B' answered description {first:?} right after the write, not \"d0\"");
    }
    eprintln!("invalidation: {WARM_WRITES} unmeasured + {WRITES} writes on A', each read back on B' in a tight loop");
    let (mut delays, mut write_times, mut polls, mut missed) = (Vec::new(), Vec::new(), 0usize, 0usize);
    for i in 1..=WARM_WRITES + WRITES {
        let want = format!("d{i}");
        let sent = Instant::now();
        wc.call_ok(ws.request(Method::PUT, &path, format!(r#"{{"description":"{want}"}}"#).into())).await?;
        let acked = Instant::now();
        let seen = loop {
            let got = description(&mut rc, &rs, &path).await?;
            let now = Instant::now();
            if i > WARM_WRITES {
                polls += 1;
            }
            if got == want {
                break Some(now);
            }
            if now - acked > SEEN_TIMEOUT {
                break None;
            }
        };
        if i <= WARM_WRITES {
            continue;
        }
        write_times.push(acked - sent);
        match seen {
            Some(t) => delays.push(t - acked),
            None => missed += 1,
        }
    }
    // The floor of the figure: one GetFunction on B, answered from its cache.
    let mut reads = Vec::with_capacity(WRITES);
    for _ in 0..WRITES {
        let start = Instant::now();
        description(&mut rc, &rs, &path).await?;
        reads.push(start.elapsed());
    }
    reads.sort_unstable();
    delays.sort_unstable();
    write_times.sort_unstable();
    let over = delays.iter().filter(|d| **d > BOUND).count();
    let max = delays.last().copied().unwrap_or_default();
    let n = delays.len();
    Ok(vec![
        check(
            format!("write on A → visible on B ({WRITES} writes, 60 s cache TTL): p50 / p99 / max"),
            format!("{} / {} / {}", us(percentile(&delays, 50.0)), us(percentile(&delays, 99.0)), us(max)),
            "max ≤ 100 ms",
            missed == 0 && max <= BOUND,
        ),
        check(
            "writes visible on B later than 100 ms (or not within 5 s)",
            format!("{over} of {n} ({missed} not within 5 s)"),
            "0",
            over == 0 && missed == 0,
        ),
        info(
            "UpdateFunction on A (the write itself, sent → 200): p50 / p99",
            format!("{} / {}", us(percentile(&write_times, 50.0)), us(percentile(&write_times, 99.0))),
        ),
        info("GetFunction calls on B per write until visible (mean)", format!("{:.1}", polls as f64 / WRITES as f64)),
        info(
            format!("one GetFunction on B, no write pending (the figure's floor): p50 / p99 of {WRITES}"),
            format!("{} / {}", us(percentile(&reads, 50.0)), us(percentile(&reads, 99.0))),
        ),
    ])
}
