//! The invocation benchmark (`scripts/bench.sh invoke`). The function under test is this very binary
//! shipped as a custom runtime's `bootstrap` (see `runtime`), and the baseline is the same binary
//! serving on the host, called directly, measured in the same run.
//!
//! 1. Warm InvokeFunction vs the runtime server behind nginx and called directly, at concurrency 1 pinned
//!    and at concurrency 16, with CPU per invocation next to a signed GetFunction's (see `warmbench`, also
//!    run alone as `scripts/bench.sh warm`).
//! 2. Cold start of a python3.10 event function, end to end: each UpdateFunction (a new description)
//!    makes a new instance pool, so the next invocation starts a new instance.
//! 3. Platform overhead of a custom-runtime cold start: the median cold invocation minus the median
//!    time the same binary takes, started directly on the host, to answer its first request.
//! 4. 1,000 concurrent invocations (1,000 connections, released together) of a function with
//!    `instanceConcurrency` 100 on openfc with `--max-instances 10`: first with no instance running,
//!    then again with the instances warm.
//!
//! Cold starts are broken down by openfc's `openfc_cold_start_seconds{phase}` metrics (means over the
//! measured runs).

use std::collections::{BTreeMap, HashSet};
use std::io::{Cursor, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hyper::{HeaderMap, Method};
use zip::write::SimpleFileOptions;

use crate::client::{Conn, Signer, plain_get};
use crate::load::percentile;
use crate::procs::{self, Openfc};
use crate::{Row, check, info, us};

const SERVICES: &str = "/2016-08-15/services";
pub(crate) const FUNCTIONS: &str = "/2016-08-15/services/bench/functions";
pub(crate) const EVENT: &[u8] = br#"{"hello":"openfc"}"#;
const PYTHON_CODE: &str = "def handler(event, context):\n    return event\n";
const COLD_RUNS: usize = 10;
const TAIL_RUNS: usize = 200;
const BURST: usize = 1000;

pub(crate) fn invoke_path(function: &str) -> String {
    format!("{FUNCTIONS}/{function}/invocations")
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// `warm`: only the warm figures (`warmbench`); else all of them.
pub async fn run(openfc_bin: &Path, seconds: Duration, warm_only: bool) -> anyhow::Result<Vec<Row>> {
    let zips = Zips::build().await?;
    let mut rows = crate::warmbench::run(openfc_bin, seconds, &zips).await?;
    if !warm_only {
        rows.extend(unpinned(openfc_bin, &zips).await?);
    }
    Ok(rows)
}

pub(crate) struct Zips {
    pub bootstrap: Vec<u8>,
    python: Vec<u8>,
}

impl Zips {
    async fn build() -> anyhow::Result<Self> {
        Ok(Zips { bootstrap: tokio::task::spawn_blocking(bootstrap_zip).await??, python: python_zip()? })
    }
}

/// A zip whose `bootstrap` (mode 0755) is a copy of this binary.
pub(crate) fn bootstrap_zip() -> anyhow::Result<Vec<u8>> {
    let exe = std::fs::read(std::env::current_exe()?).context("reading this binary")?;
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).unix_permissions(0o755);
    zip.start_file("bootstrap", options)?;
    zip.write_all(&exe)?;
    Ok(zip.finish()?.into_inner())
}

fn python_zip() -> anyhow::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file("index.py", SimpleFileOptions::default().unix_permissions(0o644))?;
    zip.write_all(PYTHON_CODE.as_bytes())?;
    Ok(zip.finish()?.into_inner())
}

pub(crate) fn create_body(name: &str, runtime: &str, handler: &str, zip: &[u8], concurrency: u32) -> Bytes {
    serde_json::json!({
        "functionName": name,
        "runtime": runtime,
        "handler": handler,
        "timeout": 10,
        "instanceConcurrency": concurrency,
        "code": {"zipFile": STANDARD.encode(zip)},
    })
    .to_string()
    .into()
}

/// Creates the `bench` service on a fresh openfc.
pub(crate) async fn setup(openfc: &Openfc) -> anyhow::Result<(Arc<Signer>, Conn)> {
    let signer = Arc::new(Signer::from_credentials(&openfc.credentials, openfc.addr())?);
    let mut conn = Conn::open(signer.addr).await?;
    conn.call_ok(signer.request(Method::POST, SERVICES, Bytes::from(r#"{"serviceName":"bench"}"#))).await?;
    Ok((signer, conn))
}

/// One synchronous invocation that must succeed and echo the event; returns its latency and instance id.
pub(crate) async fn invoke_once(conn: &mut Conn, signer: &Signer, function: &str) -> anyhow::Result<(Duration, String)> {
    let req = signer.request(Method::POST, &invoke_path(function), Bytes::from_static(EVENT));
    let start = Instant::now();
    let (status, headers, body) = conn.call_full(req).await?;
    let elapsed = start.elapsed();
    check_invocation(function, status, &headers, &body)?;
    Ok((elapsed, instance_id(&headers)))
}

fn instance_id(headers: &HeaderMap) -> String {
    headers.get("x-fc-instance-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

fn check_invocation(function: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> anyhow::Result<()> {
    let text = || String::from_utf8_lossy(body).into_owned();
    if status != 200 {
        bail!("invoking {function}: HTTP {status}: {}", text());
    }
    if let Some(t) = headers.get("x-fc-error-type") {
        bail!("invoking {function}: function error {t:?}: {}", text());
    }
    if body != EVENT {
        bail!("invoking {function}: the answer is not the event: {}", text());
    }
    Ok(())
}

/// Pins every thread of this process to some CPUs until dropped.
pub(crate) struct Pin(String);

impl Pin {
    pub(crate) fn to(cpus: &str) -> anyhow::Result<Self> {
        let restore = procs::allowed_cpus()?;
        procs::set_affinity(std::process::id(), cpus)?;
        Ok(Pin(restore))
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        if let Err(e) = procs::set_affinity(std::process::id(), &self.0) {
            eprintln!("could not restore the CPU affinity: {e:#}");
        }
    }
}

/// Sequential invocations with `x-fc-log-type: Tail`: p50, and how many answers carried the log.
pub(crate) async fn tail_sample(signer: &Signer, function: &str, runs: usize) -> anyhow::Result<(Duration, usize)> {
    let mut conn = Conn::open(signer.addr).await?;
    let (mut times, mut with_log) = (Vec::with_capacity(runs), 0);
    for _ in 0..runs {
        let req = signer.request_with(Method::POST, &invoke_path(function), Bytes::from_static(EVENT), &[("x-fc-log-type", "Tail")]);
        let start = Instant::now();
        let (status, headers, body) = conn.call_full(req).await?;
        times.push(start.elapsed());
        check_invocation(function, status, &headers, &body)?;
        let log = headers
            .get("x-fc-log-result")
            .and_then(|v| STANDARD.decode(v.as_bytes()).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        with_log += usize::from(log.contains("FC Invoke Start RequestId") && log.contains("FC Invoke End RequestId"));
    }
    times.sort_unstable();
    Ok((percentile(&times, 50.0), with_log))
}

/// Warnings and errors in openfc's log, and instance processes that outlive openfc's SIGTERM.
pub(crate) fn log_rows(label: &str, openfc: Openfc) -> Vec<Row> {
    let problems = openfc.log_problems();
    for p in problems.iter().take(10) {
        eprintln!("{label} log: {p}");
    }
    let leftover = openfc.stop();
    for p in &leftover {
        eprintln!("{label}: still running after openfc stopped: {p}");
    }
    vec![
        info(format!("{label}: WARN/ERROR lines in its log"), problems.len().to_string()),
        check(format!("{label}: instance processes left after SIGTERM"), leftover.len().to_string(), "0", leftover.is_empty()),
    ]
}

/// Figures 2, 3 and 4 on one unpinned openfc with `--max-instances 10 --queue-timeout-ms 30000`.
async fn unpinned(openfc_bin: &Path, zips: &Zips) -> anyhow::Result<Vec<Row>> {
    let openfc = Openfc::start(openfc_bin, &["--max-instances", "10", "--queue-timeout-ms", "30000"], None).await?;
    eprintln!("openfc on {}, data in {}", openfc.addr(), openfc.dir.path().display());
    let (signer, mut conn) = setup(&openfc).await.map_err(|e| e.context(openfc.log_tail()))?;
    let mut rows = Vec::new();
    let sections: [(&str, Section); 3] = [
        ("python3.10 cold start", Section::PythonCold),
        ("custom runtime cold start", Section::CustomCold),
        ("1000 concurrent invocations", Section::Burst),
    ];
    for (label, section) in sections {
        let r = match section {
            Section::PythonCold => python_cold(&openfc, &signer, &mut conn, zips).await,
            Section::CustomCold => custom_cold(&openfc, &signer, &mut conn, zips).await,
            Section::Burst => bursts(&signer, &mut conn, zips).await,
        };
        match r {
            Ok(r) => rows.extend(r),
            Err(e) => {
                eprintln!("{label} failed: {e:#}\n{}", openfc.log_tail());
                rows.push(check(label, "FAILED (see above)", "", false));
                // A broken connection must not fail the sections after it.
                conn = Conn::open(signer.addr).await?;
            }
        }
    }
    drop(conn);
    rows.extend(log_rows("openfc", openfc));
    Ok(rows)
}

#[derive(Clone, Copy)]
enum Section {
    PythonCold,
    CustomCold,
    Burst,
}

/// Cold invocations of `function`, each after an UpdateFunction that makes a new pool.
struct Cold {
    /// Sorted.
    times: Vec<Duration>,
    instances: usize,
    /// Mean milliseconds per cold-start phase over the measured runs.
    phases: Vec<(String, f64)>,
}

async fn cold_starts(openfc: &Openfc, signer: &Signer, conn: &mut Conn, function: &str, runs: usize) -> anyhow::Result<Cold> {
    // The first start also unpacks the package: not measured.
    let (first, _) = invoke_once(conn, signer, function).await?;
    eprintln!("{function}: first invocation (package unpack + cold start) {}", ms(first));
    let before = cold_metrics(openfc.addr()).await?;
    let (mut times, mut ids) = (Vec::new(), HashSet::new());
    for i in 0..runs {
        let update = serde_json::json!({"description": format!("cold start {i}")}).to_string();
        conn.call_ok(signer.request(Method::PUT, &format!("{FUNCTIONS}/{function}"), update.into())).await?;
        let (t, id) = invoke_once(conn, signer, function).await?;
        times.push(t);
        ids.insert(id);
    }
    let after = cold_metrics(openfc.addr()).await?;
    times.sort_unstable();
    let mut phases = Vec::new();
    for phase in ["unpack", "sandbox", "runtime_ready", "initializer", "total"] {
        let (s1, c1) = after.get(phase).copied().unwrap_or_default();
        let (s0, c0) = before.get(phase).copied().unwrap_or_default();
        if c1 > c0 {
            phases.push((phase.to_owned(), (s1 - s0) / (c1 - c0) * 1e3));
        }
    }
    Ok(Cold { times, instances: ids.len(), phases })
}

/// `phase → (sum seconds, count)` of `openfc_cold_start_seconds`.
async fn cold_metrics(addr: SocketAddr) -> anyhow::Result<BTreeMap<String, (f64, f64)>> {
    let mut conn = Conn::open(addr).await?;
    let (status, text) = conn.call(plain_get(addr, "/metrics")).await?;
    if status != 200 {
        bail!("GET /metrics: HTTP {status}");
    }
    let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for line in String::from_utf8_lossy(&text).lines() {
        let (is_sum, rest) = match (line.strip_prefix("openfc_cold_start_seconds_sum{"), line.strip_prefix("openfc_cold_start_seconds_count{")) {
            (Some(r), _) => (true, r),
            (_, Some(r)) => (false, r),
            _ => continue,
        };
        let Some((labels, value)) = rest.split_once("} ") else { continue };
        let Some(phase) = labels.split("phase=\"").nth(1).and_then(|p| p.split('"').next()) else { continue };
        let Ok(value) = value.trim().parse::<f64>() else { continue };
        let entry = out.entry(phase.to_owned()).or_default();
        if is_sum {
            entry.0 = value;
        } else {
            entry.1 = value;
        }
    }
    Ok(out)
}

fn phases_figure(cold: &Cold) -> String {
    let parts: Vec<String> = cold.phases.iter().map(|(p, v)| format!("{p} {v:.1}")).collect();
    let total = cold.phases.iter().find(|(p, _)| p == "total").map_or(0.0, |(_, v)| *v);
    let median = percentile(&cold.times, 50.0).as_secs_f64() * 1e3;
    format!("{} ms; outside instance start ≈ {:.1} ms", parts.join(", "), median - total)
}

fn cold_rows(label: &str, cold: &Cold, runs: usize) -> Vec<Row> {
    vec![
        info(
            format!("{label}: min / p50 / max of {runs}"),
            format!(
                "{} / {} / {}",
                ms(cold.times[0]),
                ms(percentile(&cold.times, 50.0)),
                ms(*cold.times.last().expect("runs > 0"))
            ),
        ),
        check(format!("{label}: distinct instances (one new per run)"), format!("{}/{runs}", cold.instances), "all", cold.instances == runs),
        info(format!("{label}: phases (mean of openfc_cold_start_seconds)"), phases_figure(cold)),
    ]
}

/// Figure 2.
async fn python_cold(openfc: &Openfc, signer: &Arc<Signer>, conn: &mut Conn, zips: &Zips) -> anyhow::Result<Vec<Row>> {
    conn.call_ok(signer.request(Method::POST, FUNCTIONS, create_body("py", "python3.10", "index.handler", &zips.python, 1))).await?;
    eprintln!("python3.10 cold starts, {COLD_RUNS} runs");
    let cold = cold_starts(openfc, signer, conn, "py", COLD_RUNS).await?;
    let p50 = percentile(&cold.times, 50.0);
    let mut rows = vec![check(
        format!("python3.10 event function cold invoke: p50 of {COLD_RUNS}"),
        ms(p50),
        "< 60 ms",
        p50 < Duration::from_millis(60),
    )];
    rows.extend(cold_rows("python3.10 cold invoke", &cold, COLD_RUNS));
    let mut warm = Vec::new();
    for _ in 0..TAIL_RUNS {
        warm.push(invoke_once(conn, signer, "py").await?.0);
    }
    warm.sort_unstable();
    rows.push(info(format!("python3.10 warm invoke (c=1, unpinned): p50 of {TAIL_RUNS}"), us(percentile(&warm, 50.0))));
    Ok(rows)
}

/// Figure 3.
async fn custom_cold(openfc: &Openfc, signer: &Arc<Signer>, conn: &mut Conn, zips: &Zips) -> anyhow::Result<Vec<Row>> {
    conn.call_ok(signer.request(Method::POST, FUNCTIONS, create_body("cold", "custom", "h", &zips.bootstrap, 1))).await?;
    eprintln!("custom runtime cold starts, {COLD_RUNS} runs, and {COLD_RUNS} direct starts");
    let cold = cold_starts(openfc, signer, conn, "cold", COLD_RUNS).await?;
    let exe = std::env::current_exe()?;
    // The same binary straight from the host, once unmeasured (page cache), then measured.
    let direct = tokio::task::spawn_blocking(move || {
        direct_start(&exe)?;
        let mut times = (0..COLD_RUNS).map(|_| direct_start(&exe)).collect::<anyhow::Result<Vec<_>>>()?;
        times.sort_unstable();
        anyhow::Ok(times)
    })
    .await??;
    let (cold_p50, direct_p50) = (percentile(&cold.times, 50.0), percentile(&direct, 50.0));
    let overhead = cold_p50.saturating_sub(direct_p50);
    let mut rows = vec![
        info(format!("custom runtime cold invoke through openfc: p50 of {COLD_RUNS}"), ms(cold_p50)),
        info(format!("same runtime started directly, first answer: p50 of {COLD_RUNS}"), ms(direct_p50)),
        check("custom cold start platform overhead (p50 difference)", ms(overhead), "< 10 ms", overhead < Duration::from_millis(10)),
    ];
    rows.extend(cold_rows("custom cold invoke", &cold, COLD_RUNS));
    Ok(rows)
}

/// Starts this binary as the runtime on a free port and times spawn → first `POST /invoke` answered
/// (blocking; polls the port every 100 µs).
fn direct_start(exe: &Path) -> anyhow::Result<Duration> {
    let port = procs::free_port()?;
    let start = Instant::now();
    let mut child = std::process::Command::new(exe)
        .arg("runtime-server")
        .env("FC_CUSTOM_LISTEN_PORT", port.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let result = (|| {
        let mut stream = loop {
            match std::net::TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) => {
                    if child.try_wait()?.is_some() || start.elapsed() > Duration::from_secs(10) {
                        bail!("the runtime server did not listen: {e}");
                    }
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
        };
        stream.set_nodelay(true)?;
        let mut request = format!("POST /invoke HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-length: {}\r\n\r\n", EVENT.len()).into_bytes();
        request.extend_from_slice(EVENT);
        stream.write_all(&request)?;
        let (status, body) = read_response(&mut stream)?;
        let elapsed = start.elapsed();
        if status != 200 || body != EVENT {
            bail!("the runtime server answered {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(elapsed)
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// Reads one HTTP/1.1 response with a Content-Length body.
fn read_response(stream: &mut std::net::TcpStream) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed mid-response");
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no status")?;
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .context("no content-length")?;
        while buf.len() < end + 4 + length {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                bail!("connection closed mid-body");
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        return Ok((status, buf[end + 4..end + 4 + length].to_vec()));
    }
}

/// What one burst of concurrent invocations did.
struct Burst {
    total: Duration,
    /// Sorted latencies of all requests, failed ones included.
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
    instances: usize,
}

/// Figure 4: the burst with no instance running, then again warm.
async fn bursts(signer: &Arc<Signer>, conn: &mut Conn, zips: &Zips) -> anyhow::Result<Vec<Row>> {
    conn.call_ok(signer.request(Method::POST, FUNCTIONS, create_body("fan", "custom", "h", &zips.bootstrap, 100))).await?;
    let mut rows = Vec::new();
    for label in ["cold (no instance running)", "warm (instances running)"] {
        eprintln!("{BURST} concurrent invocations, {label}");
        let b = burst(signer, &invoke_path("fan"), BURST).await?;
        if let Some(e) = &b.first_error {
            eprintln!("  {} errors; first: {e}", b.errors);
        }
        rows.push(check(format!("{BURST} concurrent invocations, {label}: errors"), b.errors.to_string(), "0", b.errors == 0));
        rows.push(info(
            format!("{BURST} concurrent invocations, {label}"),
            format!(
                "total {}, latency p50 {} p99 {} max {}, {} instance(s)",
                ms(b.total),
                ms(percentile(&b.latencies, 50.0)),
                ms(percentile(&b.latencies, 99.0)),
                ms(*b.latencies.last().unwrap_or(&Duration::ZERO)),
                b.instances
            ),
        ));
    }
    Ok(rows)
}

/// `n` connections opened first, each with one signed request, all released at once.
async fn burst(signer: &Arc<Signer>, path: &str, n: usize) -> anyhow::Result<Burst> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(Conn::open(signer.addr).await?);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(n + 1));
    let mut tasks = Vec::with_capacity(n);
    for mut conn in conns {
        let req = signer.request(Method::POST, path, Bytes::from_static(EVENT));
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let start = Instant::now();
            let result = conn.call_full(req).await;
            (start.elapsed(), Instant::now(), result)
        }));
    }
    barrier.wait().await;
    let released = Instant::now();
    let mut out = Burst { total: Duration::ZERO, latencies: Vec::with_capacity(n), errors: 0, first_error: None, instances: 0 };
    let mut ids = HashSet::new();
    for task in tasks {
        let (latency, ended, result) = task.await?;
        out.latencies.push(latency);
        out.total = out.total.max(ended - released);
        let error = match result {
            Ok((status, headers, body)) => {
                ids.insert(instance_id(&headers));
                check_invocation("fan", status, &headers, &body).err().map(|e| format!("{e:#}"))
            }
            Err(e) => Some(format!("transport: {e:#}")),
        };
        if let Some(e) = error {
            out.errors += 1;
            out.first_error.get_or_insert(e);
        }
    }
    ids.remove("");
    out.instances = ids.len();
    out.latencies.sort_unstable();
    Ok(out)
}
