//! `openfc-bench`: the figures behind `scripts/bench.sh`, in six parts (`api`, `invoke`, `async`, `images`,
//! `prestart`, `nodes`; all by default).
//!
//! `api`: starts `openfc serve` (temp data dir, free port) and, as a baseline measured in the same run,
//! this binary's own `bare-server` mode: an axum handler answering a GetFunctionCode-sized JSON body,
//! under the same runtime and TCP settings. A closed-loop load generator signs every request like an fc2
//! client (also those to the baseline, so client cost is equal) and measures throughput, latency
//! percentiles and CPU per request at concurrency 1 and 16; then it times CreateFunction with 1 MB and
//! 50 MB packages while watching the server's peak memory, and measures the download rate of a 50 MB
//! package's code URL.
//!
//! `invoke`: InvokeFunction against this binary serving as a trivial custom runtime (see `runtime`),
//! compared with the same runtime server behind nginx and called directly (`warm` runs only these figures,
//! see `warmbench`); cold starts of Python and custom-runtime functions; 1,000 concurrent invocations (see
//! `invoke`).
//!
//! `async`: durable asynchronous InvokeFunction against the same runtime, recording what it ran: accepts
//! per second next to synchronous invocations of the same function, completions per second of a burst,
//! 202 → start latency idle and under load, and timer-trigger fire jitter (see `asyncbench`). On SQLite,
//! and on PostgreSQL too with `--database-url URL` (an empty database).
//!
//! `images`: custom-container images: pull + unpack against skopeo + umoci, cold start of an image against
//! a custom runtime with the same server, disk of two images sharing a base layer (see `imagebench`).
//!
//! `prestart`: Python and Node.js cold starts with pre-started runtimes on and off, next to the bare
//! interpreter start, and a burst of distinct functions cold at once (see `prestartbench`).
//!
//! `runtimes`: cold start and warm invoke of go1, java11 and php7.2 (python3.10 and a custom runtime as
//! references), each next to its bare start (see `runtimesbench`).
//!
//! `nodes`: control-plane and warm-invoke throughput on SQLite vs PostgreSQL, one node vs two on PostgreSQL +
//! S3, and how long a write on one node takes to be visible on another (see `nodesbench`). Needs an empty
//! PostgreSQL database (`--nodes-database-url URL`, else `--database-url URL` unless `async` runs too) and
//! `--code-store s3://BUCKET` with `OPENFC_S3_*` set; scripts/bench.sh provides both when none is given.
//!
//! It prints tables of figures against their targets. It is a measurement, not a test: it fails only
//! when it cannot measure.


mod asyncbench;
mod client;
mod imagebench;
mod invoke;
mod load;
mod nodesbench;
mod package;
mod prestartbench;
mod procs;
mod runtime;
mod runtimesbench;
mod warmbench;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::serve::ListenerExt;
use bytes::Bytes;
use hyper::Method;

use client::{Conn, Signer};
use load::Call;
use package::FUNCTIONS;
use procs::Servers;

const USAGE: &str = "usage: openfc-bench [api|invoke|warm|async|images|prestart|nodes|runtimes]... [--openfc PATH] [--seconds N] \
                     [--database-url URL] [--nodes-database-url URL] [--code-store s3://BUCKET]";
const FUNCTION_PATH: &str = "/2016-08-15/services/bench/functions/f";
const CODE_PATH: &str = "/2016-08-15/services/bench/functions/f/code";
/// Shaped and sized like openfc's GetFunctionCode answer (273 bytes).
const BARE_BODY: &str = concat!(
    r#"{"checksum":"175337865456933622","url":"http://127.0.0.1:36509/_openfc/code/packages/sha256/"#,
    r#"31089f15d5a424012c2b857266d5ecb582c28dd9ed640f04575b6937e73b0fa6.zip?Expires=1795978312"#,
    r#"&Checksum=175337865456933622&Size=1100&Signature=5l-aDSjcfYpc_o22JRW-OThqdW4ggzhZYGvVRJaGd7g"}"#
);

fn main() -> anyhow::Result<()> {
    // In a function's zip this binary is the custom runtime's `bootstrap`.
    if runtime::is_bootstrap() {
        return runtime::serve_from_env();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    match args.first().map(String::as_str) {
        Some("runtime-server") => return runtime::serve_from_env(),
        Some("bare-server") => {
            let port = flag("--port").map_or(Ok(0), |p| p.parse())?;
            return tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(bare_server(port));
        }
        _ => {}
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    // Positional words (not flags, not flag values) choose the parts.
    let mut parts = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--openfc" | "--seconds" | "--database-url" | "--nodes-database-url" | "--code-store" => i += 1,
            "api" | "invoke" | "warm" | "async" | "images" | "prestart" | "nodes" | "runtimes" => parts.push(args[i].clone()),
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
        i += 1;
    }
    let chosen = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    let (run_api, run_invoke, run_async) = (chosen("api"), chosen("invoke"), chosen("async"));
    // `invoke` includes the warm figures; `warm` alone runs only them.
    let warm_only = !run_invoke && chosen("warm");
    let database_url = flag("--database-url").cloned();
    let openfc = PathBuf::from(flag("--openfc").map_or("target/release/openfc", String::as_str));
    let seconds: u64 = flag("--seconds").map_or(Ok(5), |s| s.parse()).context(USAGE)?;
    // The nodes part needs an empty database of its own: `async` fills the one `--database-url` names.
    let nodes = if chosen("nodes") {
        let url = match (flag("--nodes-database-url"), &database_url) {
            (Some(url), _) => url.clone(),
            (None, Some(url)) if !run_async => url.clone(),
            (None, Some(_)) => bail!("async and nodes each need an empty database: give nodes its own with --nodes-database-url\n{USAGE}"),
            (None, None) => bail!("nodes needs an empty PostgreSQL database (--nodes-database-url or --database-url; scripts/bench.sh starts one)\n{USAGE}"),
        };
        let store = flag("--code-store").cloned().context("nodes needs --code-store s3://BUCKET (scripts/bench.sh starts moto)")?;
        Some((url, store))
    } else {
        None
    };
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let run = async {
            let api_rows = if run_api { Some(bench_api(openfc.clone(), Duration::from_secs(seconds)).await?) } else { None };
            let invoke_rows = if run_invoke || warm_only {
                Some(invoke::run(&openfc, Duration::from_secs(seconds), warm_only).await?)
            } else {
                None
            };
            let async_rows = if run_async {
                Some(asyncbench::run(&openfc, Duration::from_secs(seconds), database_url.as_deref()).await?)
            } else {
                None
            };
            let image_rows = if chosen("images") { Some(imagebench::run(&openfc).await?) } else { None };
            let prestart_rows = if chosen("prestart") { Some(prestartbench::run(&openfc).await?) } else { None };
            let runtimes_rows = if chosen("runtimes") { Some(runtimesbench::run(&openfc).await?) } else { None };
            let nodes_rows = match &nodes {
                Some((url, store)) => Some(nodesbench::run(&openfc, Duration::from_secs(seconds), url, store).await?),
                None => None,
            };
            anyhow::Ok((api_rows, invoke_rows, async_rows, image_rows, prestart_rows, nodes_rows, runtimes_rows))
        };
        let (api_rows, invoke_rows, async_rows, image_rows, prestart_rows, nodes_rows, runtimes_rows) = tokio::select! {
            rows = run => rows?,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        };
        if let Some(rows) = api_rows {
            println!("\ncontrol plane (scripts/bench.sh api)");
            print_table(&rows);
            println!("\ncpu S+C µs = server + load-generator CPU time per request; c = concurrent keep-alive connections.");
        }
        if let Some(rows) = invoke_rows {
            println!("\ninvocation (scripts/bench.sh {})", if warm_only { "warm" } else { "invoke" });
            print_table(&rows);
            println!("\ncpu S+C µs = server (openfc with its instances; nginx with the runtime server) + load-generator CPU time per");
            println!("request; c = concurrent keep-alive connections; \"direct\" = the same runtime server called without openfc, and");
            println!("\"nginx\" = it behind nginx as a keep-alive reverse proxy, both in the same run.");
        }
        if let Some(rows) = async_rows {
            println!("\nasync invocations and timers (scripts/bench.sh async)");
            print_table(&rows);
            println!("\n202 → start = when the function's runtime got the event minus when the client had its 202 (one clock);");
            println!("events are counted and timed by the runtime itself, matched to their 202 by request id.");
        }
        if let Some(rows) = image_rows {
            println!("\ncustom-container images (scripts/bench.sh images)");
            print_table(&rows);
        }
        if let Some(rows) = prestart_rows {
            println!("\npre-started runtimes (scripts/bench.sh prestart)");
            print_table(&rows);
            println!("\ncold invoke = a function's first InvokeFunction, end to end (its package unpack included), each sample a");
            println!("different function, taken once /health shows the pools full and openfc's process tree is quiet.");
        }
        if let Some(rows) = nodes_rows {
            println!("\nmany nodes (scripts/bench.sh nodes)");
            print_table(&rows);
            println!("\nc = concurrent keep-alive connections (per node for round-robin loads: one to each node per worker, request k of");
            println!("worker w to node (w + k) mod 2); each figure the best of {} rounds run in alternation. Writes: each worker", nodesbench::ROUNDS);
            println!("updates its own function. openfc cpu = the openfc processes and their instances, PostgreSQL's own not counted.");
            println!("Visible on B = B's first GetFunction answer with the new description minus A's 200 for the write, B");
            println!("polling one request at a time, both nodes with a 60 s cache TTL (only the notification can make it visible).");
        }
        if let Some(rows) = runtimes_rows {
            println!("\nbuilt-in runtimes (scripts/bench.sh runtimes)");
            print_table(&rows);
            println!("\ncold invoke = a function's first InvokeFunction, end to end (its package unpack included), each sample a");
            println!("different function of 128 MB, taken once /health shows the pools full and openfc's process tree is quiet;");
            println!("bare start = the program spawned and waited for by the benchmark. go1 and custom run the same Go echo shape.");
        }
        println!("\nbenchmark took {:.1} s", started.elapsed().as_secs_f64());
        Ok(())
    })
}

/// The baseline: any path answers 200 with `BARE_BODY`; TCP_NODELAY on accepted sockets.
async fn bare_server(port: u16) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    let app = axum::Router::new().fallback(|| async { ([("content-type", "application/json; charset=utf-8")], BARE_BODY) });
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    Ok(axum::serve(listener, app).await?)
}

pub struct Row {
    metric: String,
    figure: String,
    target: &'static str,
    status: &'static str,
}

pub fn info(metric: impl Into<String>, figure: impl Into<String>) -> Row {
    Row { metric: metric.into(), figure: figure.into(), target: "", status: "" }
}

pub fn check(metric: impl Into<String>, figure: impl Into<String>, target: &'static str, met: bool) -> Row {
    Row { status: if met { "MET" } else { "MISSED" }, target, ..info(metric, figure) }
}

pub fn us(d: Duration) -> String {
    match d.as_micros() {
        n if n < 10_000 => format!("{n} µs"),
        _ => format!("{:.1} ms", d.as_secs_f64() * 1e3),
    }
}

fn mb(bytes: f64) -> f64 {
    bytes / 1e6
}

async fn bench_api(openfc: PathBuf, seconds: Duration) -> anyhow::Result<Vec<Row>> {
    let servers = Servers::start(&openfc).await?;
    eprintln!(
        "openfc on {}, bare handler on {}, data in {}",
        servers.openfc.addr(),
        servers.bare.addr,
        servers.openfc.dir.path().display()
    );
    let signer = Arc::new(Signer::from_credentials(&servers.openfc.credentials, servers.openfc.addr())?);
    let bare_signer = Arc::new(signer.for_addr(servers.bare.addr));
    let mut conn = Conn::open(signer.addr).await?;
    conn.call_ok(signer.request(Method::POST, "/2016-08-15/services", Bytes::from(r#"{"serviceName":"bench"}"#))).await?;
    conn.call_ok(signer.request(Method::POST, FUNCTIONS, package::create_body("f", &package::random_zip(1024)?))).await?;

    let mut rows = Vec::new();
    let (mut errors, mut throughput) = (0, Vec::new());
    let scenarios = [
        ("bare handler", &bare_signer, servers.bare.pid(), CODE_PATH),
        ("signed GetFunction", &signer, servers.openfc.pid(), FUNCTION_PATH),
        ("signed GetFunctionCode", &signer, servers.openfc.pid(), CODE_PATH),
    ];
    for workers in [1, 16] {
        for (name, signer, pid, path) in &scenarios {
            eprintln!("load: {name}, concurrency {workers}, 1 s warm-up + {} s", seconds.as_secs());
            let r = load::run(Call::get(signer, path), workers, *pid, Duration::from_secs(1), seconds).await?;
            if let Some(e) = &r.first_error {
                eprintln!("  {} errors; first: {e}", r.errors);
            }
            errors += r.errors;
            rows.push(info(
                format!("c={workers} {name}"),
                format!(
                    "{:.0} req/s, p50 {}, p99 {}, cpu {}+{} µs",
                    r.per_sec, us(r.p50), us(r.p99), r.server_cpu.as_micros(), r.client_cpu.as_micros()
                ),
            ));
            throughput.push(((workers, *name), r.per_sec));
        }
    }
    let rate = |w, n| throughput.iter().find(|(k, _)| *k == (w, n)).map_or(0.0, |(_, v)| *v);
    for workers in [1, 16] {
        for name in ["signed GetFunction", "signed GetFunctionCode"] {
            let ratio = rate(workers, name) / rate(workers, "bare handler");
            let metric = format!("c={workers} {name} / bare throughput");
            rows.push(match (workers, name) {
                (16, "signed GetFunctionCode") => check(metric, format!("{ratio:.2}"), "≥ 0.30", ratio >= 0.30),
                _ => info(metric, format!("{ratio:.2}")),
            });
        }
    }
    rows.push(check("non-2xx or failed requests under load", errors.to_string(), "0", errors == 0));

    for (label, size, prefix) in [("1 MB", 1_000_000, "p1m-"), ("50 MB", 50_000_000, "p50m-")] {
        eprintln!("CreateFunction with {label} packages, 3 calls");
        match package::create_functions(&signer, servers.openfc.pid(), prefix, size, 3).await {
            Ok(r) => {
                let metric = format!("CreateFunction {label} zip ({:.2} MB): median of 3", mb(r.zip_bytes as f64));
                rows.push(if size == 50_000_000 {
                    check(metric, us(r.median), "< 1 s", r.median < Duration::from_secs(1))
                } else {
                    info(metric, us(r.median))
                });
                let times = r.peak_extra as f64 / r.zip_bytes as f64;
                rows.push(check(
                    format!("CreateFunction {label}: server peak extra memory (max of 3)"),
                    format!("{:.1} MB = {times:.1}× zip", mb(r.peak_extra as f64)),
                    "< 4× zip",
                    times < 4.0,
                ));
            }
            Err(e) => {
                eprintln!("CreateFunction {label} failed: {e:#}\n{}", servers.openfc.log_tail());
                rows.push(check(format!("CreateFunction {label}"), "FAILED (see above)", "", false));
            }
        }
    }

    eprintln!("download of the 50 MB package, 10 times");
    match package::download(&signer, "p50m-2", 10).await {
        Ok(d) => {
            let median = mb(d.rates[d.rates.len() / 2]);
            let best = mb(*d.rates.last().unwrap_or(&0.0));
            rows.push(check("download 50 MB package: median of 10", format!("{median:.0} MB/s"), "≥ 1000 MB/s", median >= 1000.0));
            rows.push(info("download 50 MB package: best of 10", format!("{best:.0} MB/s")));
            let n = d.rates.len();
            rows.push(check("downloads whose bytes = Content-Length", format!("{}/{n}", d.complete), "all", d.complete == n));
        }
        Err(e) => {
            eprintln!("download failed: {e:#}\n{}", servers.openfc.log_tail());
            rows.push(check("download 50 MB package", "FAILED (see above)", "", false));
        }
    }
    Ok(rows)
}

fn print_table(rows: &[Row]) {
    let width = |f: fn(&Row) -> usize, title: &str| rows.iter().map(f).max().unwrap_or(0).max(title.chars().count());
    let (m, f, t) = (
        width(|r| r.metric.chars().count(), "metric"),
        width(|r| r.figure.chars().count(), "figure"),
        width(|r| r.target.chars().count(), "target"),
    );
    let line = |a: &str, b: &str, c: &str, d: &str| {
        let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.chars().count())));
        println!("{}  {}  {}  {d}", pad(a, m), pad(b, f), pad(c, t));
    };
    println!();
    line("metric", "figure", "target", "status");
    line(&"-".repeat(m), &"-".repeat(f), &"-".repeat(t), "------");
    for r in rows {
        line(&r.metric, &r.figure, r.target, r.status);
    }
}
