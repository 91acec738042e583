//! Pre-started runtimes (`scripts/bench.sh prestart`, issue 9 item 4): Python and Node.js event-function cold
//! starts with openfc's pool of waiting runtimes on and off, in one run, next to the bare interpreter start.
//!
//! 1. Reference: `/usr/bin/python3 -c pass` and `/usr/bin/node -e 0` (the interpreters openfc runs) spawned by
//!    this process and waited for, once unmeasured (page cache), then `RUNS` times.
//! 2. Sequential cold invokes: on an openfc with `--prestarted-runtimes 2`, then on one with `0`, `RUNS`
//!    distinct python3.10 functions and `RUNS` distinct nodejs20 functions, each invoked once (signed
//!    InvokeFunction over a keep-alive connection, end to end): every sample is that function's first
//!    invocation, so it includes its package's unpack (each function has its own code, a one-line handler
//!    whose comment names it). Before each sample, outside the timing, the benchmark waits until `/health`
//!    shows every pool full again (pre-started runtimes of both languages and the warm sandboxes) and then until
//!    openfc and its descendants have used no more than one 10 ms CPU tick in 100 ms, so a runtime still loading
//!    its shim is not measured. One unmeasured cold start per language first, on each openfc. The share of
//!    samples served from the pool comes from `openfc_prestarted_runtimes_used_total`, the phases from
//!    `openfc_cold_start_seconds{phase}` (means over each language's samples).
//! 3. Resident memory per waiting runtime: `/health`'s `rss_bytes / waiting` once the pool is full.
//! 4. A burst: `BURST` distinct python3.10 functions invoked cold at once (one connection each, opened first,
//!    released together) on an openfc with a pool of 8 per language, and the same on one with the pool off.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
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
use crate::procs::{Openfc, tree_cpu_time};
use crate::{Row, check, info};

const SERVICES: &str = "/2016-08-15/services";
const FUNCTIONS: &str = "/2016-08-15/services/bench/functions";
const EVENT: &[u8] = br#"{"hello":"openfc"}"#;
/// Cold starts per language and pool setting, and runs of each bare interpreter.
const RUNS: usize = 20;
/// The pool of the sequential runs (openfc's default).
const POOL: usize = 2;
/// The pool of the burst.
const BURST_POOL: usize = 8;
const BURST: usize = 50;
/// Warm sandbox launchers, passed explicitly so that "full" is known (openfc's default).
const WARM_SANDBOXES: u64 = 2;
const PYTHON: &str = "/usr/bin/python3";
const NODE: &str = "/usr/bin/node";

#[derive(Clone, Copy)]
struct Lang {
    /// The function's runtime.
    runtime: &'static str,
    /// Its key under `/health`'s `prestarted_runtimes`.
    health_key: &'static str,
    file: &'static str,
    /// The handler's source after a first comment line naming the function.
    comment: &'static str,
    source: &'static str,
    /// The bare interpreter start of the reference row.
    bare: (&'static str, &'static [&'static str]),
    target: &'static str,
    target_ms: u64,
}

const LANGS: [Lang; 2] = [
    Lang {
        runtime: "python3.10",
        health_key: "python",
        file: "index.py",
        comment: "#",
        source: "def handler(event, context):\n    return event\n",
        bare: (PYTHON, &["-c", "pass"]),
        target: "< 8 ms",
        target_ms: 8,
    },
    Lang {
        runtime: "nodejs20",
        health_key: "nodejs",
        file: "index.js",
        comment: "//",
        source: "exports.handler = (event, context, callback) => callback(null, event);\n",
        bare: (NODE, &["-e", "0"]),
        target: "< 12 ms",
        target_ms: 12,
    },
];

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

pub(crate) fn min_p50_max(sorted: &[Duration]) -> String {
    format!(
        "{} / {} / {}",
        ms(sorted[0]),
        ms(percentile(sorted, 50.0)),
        ms(*sorted.last().expect("samples"))
    )
}

pub async fn run(openfc_bin: &Path) -> anyhow::Result<Vec<Row>> {
    let started = Instant::now();
    let mut rows = Vec::new();

    // 1. The bare interpreters.
    let mut bare_p50 = Vec::new();
    for lang in LANGS {
        let (program, args) = lang.bare;
        let what = format!("{program} {}", args.join(" "));
        eprintln!("reference: {what}, 1 unmeasured + {RUNS} runs");
        let times = tokio::task::spawn_blocking(move || {
            bare_start(program, args)?;
            let mut t = (0..RUNS).map(|_| bare_start(program, args)).collect::<anyhow::Result<Vec<_>>>()?;
            t.sort_unstable();
            anyhow::Ok(t)
        })
        .await?;
        match times {
            Ok(t) => {
                bare_p50.push(Some(percentile(&t, 50.0)));
                rows.push(info(format!("reference: `{what}` (spawn → exit), min / p50 / max of {RUNS}"), min_p50_max(&t)));
            }
            Err(e) => {
                eprintln!("{what} failed: {e:#}");
                bare_p50.push(None);
                rows.push(check(format!("reference: `{what}`"), "FAILED (see above)", "", false));
            }
        }
    }

    // 2. and 3. Sequential cold starts, pool on then off.
    let mut seq = Vec::new();
    for pool in [POOL, 0] {
        eprintln!("sequential cold starts with --prestarted-runtimes {pool}");
        seq.push((pool, sequential(openfc_bin, pool).await));
    }
    for (i, lang) in LANGS.iter().enumerate() {
        for (pool, result) in &seq {
            let Ok(s) = result else { continue };
            let cold = &s.langs[i];
            let label = if *pool > 0 {
                format!("{} cold invoke, pre-started runtimes (pool {pool})", lang.runtime)
            } else {
                format!("{} cold invoke, pre-started runtimes off (pool 0)", lang.runtime)
            };
            let p50 = percentile(&cold.times, 50.0);
            let mut figure = ms(p50);
            if let Some(bare) = bare_p50[i] {
                figure.push_str(&format!(" = {:.2}× the bare interpreter start", p50.as_secs_f64() / bare.as_secs_f64()));
            }
            rows.push(if *pool > 0 {
                check(format!("{label}: p50 of {RUNS} functions"), figure, lang.target, p50 < Duration::from_millis(lang.target_ms))
            } else {
                info(format!("{label}: p50 of {RUNS} functions"), figure)
            });
            rows.push(info(format!("{label}: min / p50 / max"), min_p50_max(&cold.times)));
            rows.push(if *pool > 0 {
                check(format!("{label}: served by a pre-started runtime"), format!("{}/{RUNS}", cold.from_pool), "all", cold.from_pool == RUNS)
            } else {
                check(format!("{label}: served by a pre-started runtime"), format!("{}/{RUNS}", cold.from_pool), "0", cold.from_pool == 0)
            });
            rows.push(info(format!("{label}: phases (mean of openfc_cold_start_seconds)"), phases_figure(&cold.phases, Some(p50))));
        }
    }
    for (pool, result) in seq {
        match result {
            Ok(s) => {
                for (key, per_runtime, waiting) in &s.rss {
                    rows.push(info(
                        format!("/health rss_bytes per waiting {key} runtime (launcher + init + interpreter; {waiting} waiting)"),
                        format!("{:.1} MB", *per_runtime as f64 / 1e6),
                    ));
                }
                rows.extend(s.log);
            }
            Err(e) => {
                eprintln!("sequential cold starts with pool {pool} failed: {e:#}");
                rows.push(check(format!("sequential cold starts, pool {pool}"), "FAILED (see above)", "", false));
            }
        }
    }

    // 4. The burst, pool of 8 then off.
    for pool in [BURST_POOL, 0] {
        eprintln!("{BURST} distinct python3.10 functions cold at once, --prestarted-runtimes {pool}");
        match burst_run(openfc_bin, pool).await {
            Ok(r) => rows.extend(r),
            Err(e) => {
                eprintln!("burst with pool {pool} failed: {e:#}");
                rows.push(check(format!("burst of {BURST}, pool {pool}"), "FAILED (see above)", "", false));
            }
        }
    }
    eprintln!("prestart part took {:.1} s", started.elapsed().as_secs_f64());
    Ok(rows)
}

/// Spawns a bare interpreter and times it until it exits (blocking).
pub(crate) fn bare_start(program: &str, args: &[&str]) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running {program}"))?;
    let elapsed = start.elapsed();
    if !status.success() {
        bail!("{program} {} failed ({status})", args.join(" "));
    }
    Ok(elapsed)
}

/// A zip with the language's one-file handler, its first line naming `function` (so every function has its
/// own package, unpacked at its first invocation).
fn zip_for(lang: &Lang, function: &str) -> anyhow::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file(lang.file, SimpleFileOptions::default().unix_permissions(0o644))?;
    zip.write_all(format!("{} {function}\n{}", lang.comment, lang.source).as_bytes())?;
    Ok(zip.finish()?.into_inner())
}

async fn create(conn: &mut Conn, signer: &Signer, lang: &Lang, name: &str) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "functionName": name,
        "runtime": lang.runtime,
        "handler": "index.handler",
        "timeout": 10,
        "code": {"zipFile": STANDARD.encode(zip_for(lang, name)?)},
    })
    .to_string();
    conn.call_ok(signer.request(Method::POST, FUNCTIONS, body.into())).await?;
    Ok(())
}

fn invoke_path(function: &str) -> String {
    format!("{FUNCTIONS}/{function}/invocations")
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

/// One synchronous invocation that must echo the event; its latency (signing outside the timing).
async fn invoke_once(conn: &mut Conn, signer: &Signer, function: &str) -> anyhow::Result<Duration> {
    let req = signer.request(Method::POST, &invoke_path(function), Bytes::from_static(EVENT));
    let start = Instant::now();
    let (status, headers, body) = conn.call_full(req).await?;
    let elapsed = start.elapsed();
    check_invocation(function, status, &headers, &body)?;
    Ok(elapsed)
}

/// openfc with `pool` pre-started runtimes per language and the `bench` service.
pub(crate) async fn start_openfc(openfc_bin: &Path, pool: usize) -> anyhow::Result<(Openfc, Arc<Signer>, Conn)> {
    let (pool, warm) = (pool.to_string(), WARM_SANDBOXES.to_string());
    let openfc = Openfc::start(openfc_bin, &["--prestarted-runtimes", &pool, "--warm-sandboxes", &warm], None).await?;
    eprintln!("openfc --prestarted-runtimes {pool} on {}, data in {}", openfc.addr(), openfc.dir.path().display());
    let signer = Arc::new(Signer::from_credentials(&openfc.credentials, openfc.addr())?);
    let mut conn = Conn::open(signer.addr).await?;
    conn.call_ok(signer.request(Method::POST, SERVICES, Bytes::from(r#"{"serviceName":"bench"}"#))).await?;
    Ok((openfc, signer, conn))
}

async fn get_text(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let mut conn = Conn::open(addr).await?;
    let (status, body) = conn.call(plain_get(addr, path)).await?;
    if status != 200 {
        bail!("GET {path}: HTTP {status}");
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

async fn health(addr: SocketAddr) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_str(&get_text(addr, "/health").await?)?)
}

fn waiting(health: &serde_json::Value, key: &str) -> u64 {
    health["prestarted_runtimes"][key]["waiting"].as_u64().unwrap_or(0)
}

/// Waits (outside any timing) until every pool is full again and openfc's process tree is quiet; returns the
/// last `/health`.
async fn wait_ready(openfc: &Openfc, pool: usize) -> anyhow::Result<serde_json::Value> {
    let keys: Vec<&str> = LANGS.iter().map(|l| l.health_key).collect();
    wait_ready_for(openfc, &keys, pool).await
}

/// As `wait_ready`, for the pools of `keys` (`/health`'s `prestarted_runtimes` keys).
pub(crate) async fn wait_ready_for(openfc: &Openfc, keys: &[&str], pool: usize) -> anyhow::Result<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = health(openfc.addr()).await?;
        let full = keys.iter().all(|k| waiting(&h, k) >= pool as u64)
            && h["warm_sandboxes"].as_u64().unwrap_or(0) >= WARM_SANDBOXES;
        if full {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the pools did not fill within 30 s: prestarted_runtimes {}, warm_sandboxes {}",
                h["prestarted_runtimes"],
                h["warm_sandboxes"]
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Counted as waiting once its runtime is forked, a runtime may still be loading its shim: wait for quiet.
    let quiet_deadline = Instant::now() + Duration::from_secs(5);
    let mut last = tree_cpu_time(openfc.pid());
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = tree_cpu_time(openfc.pid());
        if now.saturating_sub(last) <= Duration::from_millis(10) {
            break;
        }
        if Instant::now() > quiet_deadline {
            eprintln!("openfc's process tree did not go quiet within 5 s; measuring anyway");
            break;
        }
        last = now;
    }
    health(openfc.addr()).await
}

/// `openfc_prestarted_runtimes_used_total` and `phase → (sum seconds, count)` of `openfc_cold_start_seconds`.
pub(crate) struct Metrics {
    pub(crate) used: f64,
    phases: BTreeMap<String, (f64, f64)>,
}

pub(crate) async fn metrics(addr: SocketAddr) -> anyhow::Result<Metrics> {
    let text = get_text(addr, "/metrics").await?;
    let mut out = Metrics { used: 0.0, phases: BTreeMap::new() };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("openfc_prestarted_runtimes_used_total") {
            // No labels, or labels in braces: the value is the last field.
            if let Some(v) = rest.split_whitespace().last().and_then(|v| v.parse::<f64>().ok()) {
                out.used += v;
            }
            continue;
        }
        let (is_sum, rest) = match (line.strip_prefix("openfc_cold_start_seconds_sum{"), line.strip_prefix("openfc_cold_start_seconds_count{")) {
            (Some(r), _) => (true, r),
            (_, Some(r)) => (false, r),
            _ => continue,
        };
        let Some((labels, value)) = rest.split_once("} ") else { continue };
        let Some(phase) = labels.split("phase=\"").nth(1).and_then(|p| p.split('"').next()) else { continue };
        let Ok(value) = value.trim().parse::<f64>() else { continue };
        let entry = out.phases.entry(phase.to_owned()).or_default();
        if is_sum {
            entry.0 = value;
        } else {
            entry.1 = value;
        }
    }
    Ok(out)
}

/// Mean milliseconds per phase between two snapshots.
pub(crate) fn phase_means(before: &Metrics, after: &Metrics) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (phase, (s1, c1)) in &after.phases {
        let (s0, c0) = before.phases.get(phase).copied().unwrap_or_default();
        if *c1 > c0 {
            out.push((phase.clone(), (s1 - s0) / (c1 - c0) * 1e3));
        }
    }
    out
}

/// The phases, and with `p50` what the end-to-end p50 spends outside the instance start (`total`): the request's
/// way through openfc, the user module's import and the first invocation.
pub(crate) fn phases_figure(phases: &[(String, f64)], p50: Option<Duration>) -> String {
    let order = ["unpack", "sandbox", "runtime_ready", "initializer", "total"];
    let mut parts: Vec<String> =
        order.iter().filter_map(|o| phases.iter().find(|(p, _)| p == o)).map(|(p, v)| format!("{p} {v:.1}")).collect();
    parts.extend(phases.iter().filter(|(p, _)| !order.contains(&p.as_str())).map(|(p, v)| format!("{p} {v:.1}")));
    let total = phases.iter().find(|(p, _)| p == "total").map(|(_, v)| *v);
    match (p50, total) {
        (Some(p50), Some(total)) => {
            format!("{} ms; p50 outside instance start ≈ {:.1} ms", parts.join(", "), p50.as_secs_f64() * 1e3 - total)
        }
        _ => format!("{} ms", parts.join(", ")),
    }
}

struct LangCold {
    /// Sorted.
    times: Vec<Duration>,
    from_pool: usize,
    phases: Vec<(String, f64)>,
}

struct Sequential {
    /// In `LANGS` order.
    langs: Vec<LangCold>,
    /// `(health key, rss bytes per waiting runtime, waiting)`.
    rss: Vec<(&'static str, u64, u64)>,
    /// openfc's log and leftover-process rows.
    log: Vec<Row>,
}

async fn sequential(openfc_bin: &Path, pool: usize) -> anyhow::Result<Sequential> {
    let (openfc, signer, mut conn) = start_openfc(openfc_bin, pool).await?;
    let result = async {
        for lang in &LANGS {
            for i in 0..=RUNS {
                create(&mut conn, &signer, lang, &function_name(lang, pool, i)).await?;
            }
        }
        // The pool as it waits, once its runtimes are loaded.
        let h = wait_ready(&openfc, pool).await?;
        let mut rss = Vec::new();
        for l in &LANGS {
            let n = waiting(&h, l.health_key);
            let bytes = h["prestarted_runtimes"][l.health_key]["rss_bytes"].as_u64().unwrap_or(0);
            if let Some(per_runtime) = bytes.checked_div(n) {
                rss.push((l.health_key, per_runtime, n));
            }
        }
        let mut langs = Vec::new();
        for lang in &LANGS {
            // Function 0: one unmeasured cold start.
            wait_ready(&openfc, pool).await?;
            let first = invoke_once(&mut conn, &signer, &function_name(lang, pool, 0)).await?;
            eprintln!("{} (pool {pool}): first cold start, unmeasured: {}", lang.runtime, ms(first));
            let before = metrics(openfc.addr()).await?;
            let mut times = Vec::with_capacity(RUNS);
            for i in 1..=RUNS {
                wait_ready(&openfc, pool).await?;
                times.push(invoke_once(&mut conn, &signer, &function_name(lang, pool, i)).await?);
            }
            let after = metrics(openfc.addr()).await?;
            times.sort_unstable();
            eprintln!("{} (pool {pool}): min / p50 / max {}", lang.runtime, min_p50_max(&times));
            langs.push(LangCold { times, from_pool: (after.used - before.used).round() as usize, phases: phase_means(&before, &after) });
        }
        anyhow::Ok((langs, rss))
    }
    .await;
    drop(conn);
    let (langs, rss) = result.map_err(|e| e.context(openfc.log_tail()))?;
    let log = crate::invoke::log_rows(&format!("openfc (pool {pool}, sequential)"), openfc);
    Ok(Sequential { langs, rss, log })
}

fn function_name(lang: &Lang, pool: usize, i: usize) -> String {
    let short = if lang.health_key == "python" { "py" } else { "node" };
    format!("{short}-p{pool}-{i}")
}

/// `BURST` distinct Python functions invoked cold at once on an openfc with `pool` pre-started runtimes.
async fn burst_run(openfc_bin: &Path, pool: usize) -> anyhow::Result<Vec<Row>> {
    let (openfc, signer, mut conn) = start_openfc(openfc_bin, pool).await?;
    let lang = &LANGS[0];
    let result = async {
        for i in 0..=BURST {
            create(&mut conn, &signer, lang, &format!("burst-{i}")).await?;
        }
        wait_ready(&openfc, pool).await?;
        let first = invoke_once(&mut conn, &signer, "burst-0").await?;
        eprintln!("burst (pool {pool}): first cold start, unmeasured: {}", ms(first));
        wait_ready(&openfc, pool).await?;
        let before = metrics(openfc.addr()).await?;

        let mut conns = Vec::with_capacity(BURST);
        for _ in 0..BURST {
            conns.push(Conn::open(signer.addr).await?);
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(BURST + 1));
        let mut tasks = Vec::with_capacity(BURST);
        for (i, mut c) in conns.into_iter().enumerate() {
            let function = format!("burst-{}", i + 1);
            let req = signer.request(Method::POST, &invoke_path(&function), Bytes::from_static(EVENT));
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let start = Instant::now();
                let result = c.call_full(req).await;
                let latency = start.elapsed();
                let error = match result {
                    Ok((status, headers, body)) => check_invocation(&function, status, &headers, &body).err().map(|e| format!("{e:#}")),
                    Err(e) => Some(format!("transport: {e:#}")),
                };
                (latency, Instant::now(), error)
            }));
        }
        barrier.wait().await;
        let released = Instant::now();
        let (mut latencies, mut errors, mut first_error, mut total) = (Vec::with_capacity(BURST), 0, None, Duration::ZERO);
        for task in tasks {
            let (latency, ended, error) = task.await?;
            latencies.push(latency);
            total = total.max(ended - released);
            if let Some(e) = error {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
        latencies.sort_unstable();
        if let Some(e) = &first_error {
            eprintln!("  {errors} errors; first: {e}");
        }
        let after = metrics(openfc.addr()).await?;
        let from_pool = (after.used - before.used).round() as usize;
        let label = format!("{BURST} distinct python3.10 functions cold at once, pool {pool}");
        anyhow::Ok(vec![
            check(format!("{label}: errors"), errors.to_string(), "0", errors == 0),
            info(
                format!("{label}: latency"),
                format!(
                    "p50 {}, p99 {}, max {}; all answered after {}",
                    ms(percentile(&latencies, 50.0)),
                    ms(percentile(&latencies, 99.0)),
                    ms(*latencies.last().unwrap_or(&Duration::ZERO)),
                    ms(total)
                ),
            ),
            info(format!("{label}: served by a pre-started runtime"), format!("{from_pool}/{BURST}")),
            info(format!("{label}: phases (mean of openfc_cold_start_seconds)"), phases_figure(&phase_means(&before, &after), None)),
        ])
    }
    .await;
    drop(conn);
    let mut rows = result.map_err(|e| e.context(openfc.log_tail()))?;
    rows.extend(crate::invoke::log_rows(&format!("openfc (pool {pool}, burst)"), openfc));
    Ok(rows)
}
