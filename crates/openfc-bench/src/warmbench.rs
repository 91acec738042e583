//! The warm invocation benchmark (`scripts/bench.sh warm`, also part of `invoke`; issue 9 item 4): a warm
//! InvokeFunction through openfc next to the same runtime server (this binary, see `runtime`) behind Debian's
//! nginx as a keep-alive reverse proxy, and called directly, all in the same run.
//!
//! The loads a target compares run twice in alternation (`ROUNDS`), each figure the better of its two.
//!
//! 1. Concurrency 1, pinned: openfc (and so its instance), nginx (one worker) and the direct runtime server
//!    run under `taskset -c 0`, the load generator on CPU 1, so every path pays the same cross-core
//!    wake-ups. Figures: p50 overhead over direct of openfc (target < 40 µs) and of nginx. Also the p50 of
//!    invocations with `x-fc-log-type: Tail`.
//! 2. Concurrency 16, unpinned: one openfc instance with `instanceConcurrency` 16 vs nginx (two workers,
//!    `upstream { keepalive 64; }`, `proxy_http_version 1.1`, `proxy_set_header Connection ""`, its default
//!    access log to a file, as openfc writes its request line; also once without it) in front of the direct
//!    server vs the direct server. Target: openfc ≥ 0.6× nginx. CPU per request (user + system from
//!    `/proc/PID/stat` over the measured seconds) of openfc with its instance, of nginx with the runtime
//!    server and of the runtime server alone, next to a signed GetFunction's on the same openfc.
//!
//! Every load also reports its servers' sleeps per request (voluntary context switches of all their threads,
//! from `/proc/PID/task/*/status`): the wake-ups a path costs (in this VM, going to sleep and being woken took
//! about a third of openfc's CPU at concurrency 1 when profiled).
//!
//! nginx runs on a private configuration in a temp directory (its own prefix, pid file, logs and temp
//! paths) on a free port; the system configuration is never read.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Method;

use crate::client::{Conn, plain_get};
use crate::invoke::{EVENT, FUNCTIONS, Pin, Zips, create_body, invoke_once, invoke_path, log_rows, setup, tail_sample};
use crate::load::{self, Call, LoadResult};
use crate::procs::{self, Openfc, tree_cpu_time, tree_sleeps};
use crate::{Row, check, info, us};

/// The same runtime told to compute per request (see `runtime.rs`; about 200 µs of CPU here): a function
/// that does some work.
const WORK_EVENT: &[u8] = b"work:200000";
const TAIL_RUNS: usize = 200;
/// Rounds of the loads the targets compare, run in alternation: the machine's noise (other builds, the
/// scheduler) moves single runs by 10–20%, the best of each is steadier.
const ROUNDS: usize = 2;

pub async fn run(openfc_bin: &Path, seconds: Duration, zips: &Zips) -> anyhow::Result<Vec<Row>> {
    let nginx = nginx_binary();
    if nginx.is_none() {
        eprintln!("nginx not found (scripts/bench.sh installs Debian's nginx): the nginx rows are left out");
    }
    let mut rows = Vec::new();
    match pinned(openfc_bin, seconds, zips, nginx.as_deref()).await {
        Ok(r) => rows.extend(r),
        Err(e) => {
            eprintln!("pinned invocation benchmark failed: {e:#}");
            rows.push(check("c=1 invoke (pinned)", "FAILED (see above)", "", false));
        }
    }
    match concurrent(openfc_bin, seconds, zips, nginx.as_deref()).await {
        Ok(r) => rows.extend(r),
        Err(e) => {
            eprintln!("c=16 invocation benchmark failed: {e:#}");
            rows.push(check("c=16 invoke", "FAILED (see above)", "", false));
        }
    }
    if nginx.is_none() {
        rows.push(check("nginx baseline", "nginx not installed", "present", false));
    }
    Ok(rows)
}

/// What the server processes spent per request over the measured seconds.
#[derive(Clone, Copy)]
struct Usage {
    cpu: Duration,
    /// Voluntary context switches of all their threads: the sleeps (and so the wake-ups) the path costs.
    sleeps: f64,
}

fn load_figure(r: &LoadResult, u: Usage) -> String {
    format!(
        "{:.0} req/s, p50 {}, p99 {}, cpu {:.1}+{} µs, {:.2} sleeps",
        r.per_sec,
        us(r.p50),
        us(r.p99),
        micros(u.cpu),
        r.client_cpu.as_micros(),
        u.sleeps
    )
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// One closed-loop load run; the server CPU (user + system) and sleeps (voluntary context switches) are those of
/// the process trees of `pids` over the measured seconds, per recorded request.
async fn measure(label: &str, call: Arc<Call>, workers: usize, pids: &[u32], seconds: Duration) -> anyhow::Result<(LoadResult, Usage)> {
    eprintln!("load: {label}, concurrency {workers}, 1 s warm-up + {} s", seconds.as_secs());
    let warm_up = Duration::from_secs(1);
    // Sampled at the instants `load::run` records between (its own figure counts one process tree only).
    let t0 = tokio::time::Instant::now();
    let owned = pids.to_vec();
    let sampler = tokio::spawn(async move {
        let sample = |pids: &[u32]| {
            (pids.iter().map(|p| tree_cpu_time(*p)).sum::<Duration>(), pids.iter().map(|p| tree_sleeps(*p)).sum::<u64>())
        };
        tokio::time::sleep_until(t0 + warm_up).await;
        let before = sample(&owned);
        tokio::time::sleep_until(t0 + warm_up + seconds).await;
        let after = sample(&owned);
        (after.0.saturating_sub(before.0), after.1.saturating_sub(before.1))
    });
    let r = load::run(call, workers, pids[0], warm_up, seconds).await?;
    let (cpu, sleeps) = sampler.await?;
    if let Some(e) = &r.first_error {
        eprintln!("  {} errors; first: {e}", r.errors);
    }
    let n = (r.per_sec * seconds.as_secs_f64()).round().max(1.0);
    Ok((r, Usage { cpu: cpu.div_f64(n), sleeps: sleeps as f64 / n }))
}

/// Runs the loads `(name, call, server pids, repeat)` in order, those marked `repeat` `rounds` times in
/// alternation, and keeps for each the run that scores highest, with its usage per request and the errors of all
/// its runs; in the order given.
async fn best_of(
    rounds: usize,
    runs: Vec<(&'static str, Arc<Call>, Vec<u32>, bool)>,
    workers: usize,
    seconds: Duration,
    score: impl Fn(&LoadResult) -> f64,
) -> anyhow::Result<Vec<(&'static str, (LoadResult, Usage, usize))>> {
    let mut best: Vec<Option<(LoadResult, Usage, usize)>> = runs.iter().map(|_| None).collect();
    for round in 0..rounds {
        for (i, (name, call, pids, repeat)) in runs.iter().enumerate() {
            if round > 0 && !repeat {
                continue;
            }
            let label = if *repeat && rounds > 1 { format!("{name} (round {})", round + 1) } else { (*name).to_owned() };
            let (r, cpu) = measure(&label, call.clone(), workers, pids, seconds).await?;
            let errors = r.errors + best[i].as_ref().map_or(0, |b| b.2);
            best[i] = match best[i].take() {
                Some(b) if score(&b.0) >= score(&r) => Some((b.0, b.1, errors)),
                _ => Some((r, cpu, errors)),
            };
        }
    }
    Ok(runs.iter().zip(best).map(|((name, ..), b)| (*name, b.expect("every load ran"))).collect())
}

/// Figure 1: concurrency 1, the servers on CPU 0 and the load generator on CPU 1.
async fn pinned(openfc_bin: &Path, seconds: Duration, zips: &Zips, nginx_bin: Option<&Path>) -> anyhow::Result<Vec<Row>> {
    let openfc = Openfc::start(openfc_bin, &[], Some("0")).await?;
    let direct = procs::start_runtime_server(Some("0")).await?;
    let nginx = match nginx_bin {
        Some(bin) => Some(Nginx::start(bin, direct.addr, 1, Some("0")).await?),
        None => None,
    };
    eprintln!(
        "openfc (CPU 0) on {}, runtime server (CPU 0) on {}{}, data in {}",
        openfc.addr(),
        direct.addr,
        nginx.as_ref().map_or(String::new(), |n| format!(", nginx (CPU 0, 1 worker) on {}", n.addr)),
        openfc.dir.path().display()
    );
    let result = async {
        let (signer, mut conn) = setup(&openfc).await?;
        conn.call_ok(signer.request(Method::POST, FUNCTIONS, create_body("echo", "custom", "h", &zips.bootstrap, 1))).await?;
        let (first, _) = invoke_once(&mut conn, &signer, "echo").await?;
        eprintln!("first invocation (package unpack + cold start): {:.1} ms", first.as_secs_f64() * 1e3);
        let direct_signer = Arc::new(signer.for_addr(direct.addr));

        let _pin = Pin::to("1")?;
        let mut runs = vec![
            ("runtime server called directly", Call::post(&direct_signer, "/invoke", EVENT), vec![direct.pid()]),
            ("invoke through openfc", Call::post(&signer, &invoke_path("echo"), EVENT), vec![openfc.pid()]),
        ];
        if let Some(n) = &nginx {
            let nginx_signer = Arc::new(signer.for_addr(n.addr));
            runs.insert(1, ("runtime server behind nginx", Call::post(&nginx_signer, "/invoke", EVENT), vec![n.pid(), direct.pid()]));
        }
        let mut rows = Vec::new();
        let mut p50 = std::collections::HashMap::new();
        for (name, (r, cpu, errors)) in best_of(ROUNDS, runs.into_iter().map(|(n, c, p)| (n, c, p, true)).collect(), 1, seconds, |r| -r.p50.as_secs_f64()).await? {
            rows.push(check(format!("c=1 (pinned) {name}: errors"), errors.to_string(), "0", errors == 0));
            rows.push(info(format!("c=1 (pinned) {name} (lowest p50 of {ROUNDS})"), load_figure(&r, cpu)));
            p50.insert(name, r.p50);
        }
        let direct_p50 = p50["runtime server called directly"];
        let overhead = p50["invoke through openfc"].saturating_sub(direct_p50);
        rows.push(check("c=1 invoke p50 overhead = p50(openfc) − p50(direct)", us(overhead), "< 40 µs", overhead < Duration::from_micros(40)));
        if let Some(n) = p50.get("runtime server behind nginx") {
            rows.push(info("c=1 nginx p50 overhead = p50(nginx) − p50(direct) (reference)", us(n.saturating_sub(direct_p50))));
        }

        eprintln!("{TAIL_RUNS} invocations with x-fc-log-type: Tail (pinned)");
        let (tail_p50, with_log) = tail_sample(&signer, "echo", TAIL_RUNS).await?;
        rows.push(info(format!("c=1 (pinned) invoke with x-fc-log-type: Tail, p50 of {TAIL_RUNS}"), us(tail_p50)));
        rows.push(check(
            "Tail invocations whose x-fc-log-result holds the Start/End markers",
            format!("{with_log}/{TAIL_RUNS}"),
            "all",
            with_log == TAIL_RUNS,
        ));
        anyhow::Ok(rows)
    }
    .await;
    let mut rows = result.map_err(|e| e.context(openfc.log_tail()))?;
    drop(nginx);
    rows.extend(log_rows("pinned openfc", openfc));
    Ok(rows)
}

/// Figure 2: concurrency 16, unpinned.
async fn concurrent(openfc_bin: &Path, seconds: Duration, zips: &Zips, nginx_bin: Option<&Path>) -> anyhow::Result<Vec<Row>> {
    let openfc = Openfc::start(openfc_bin, &[], None).await?;
    let direct = procs::start_runtime_server(None).await?;
    let (nginx, nginx_quiet) = match nginx_bin {
        Some(bin) => (Some(Nginx::start(bin, direct.addr, 2, None).await?), Some(Nginx::start_with(bin, direct.addr, 2, None, false).await?)),
        None => (None, None),
    };
    eprintln!(
        "openfc on {}, runtime server on {}{}, data in {}",
        openfc.addr(),
        direct.addr,
        nginx.as_ref().map_or(String::new(), |n| format!(", nginx (2 workers) on {}", n.addr)),
        openfc.dir.path().display()
    );
    let result = async {
        let (signer, mut conn) = setup(&openfc).await?;
        conn.call_ok(signer.request(Method::POST, FUNCTIONS, create_body("echo", "custom", "h", &zips.bootstrap, 16))).await?;
        // One instance first: 16 requests arriving at an empty pool would each start one.
        invoke_once(&mut conn, &signer, "echo").await?;
        let direct_signer = Arc::new(signer.for_addr(direct.addr));
        let echo = invoke_path("echo");
        let get_function = format!("{FUNCTIONS}/echo");
        // The target's three loads run ROUNDS times in alternation (each keeps its best); the others once.
        let mut runs = vec![
            ("runtime server called directly", Call::post(&direct_signer, "/invoke", EVENT), vec![direct.pid()], true),
            ("invoke through openfc", Call::post(&signer, &echo, EVENT), vec![openfc.pid()], true),
            ("signed GetFunction on the same openfc", Call::get(&signer, &get_function), vec![openfc.pid()], false),
            ("runtime computing per request, called directly", Call::post(&direct_signer, "/invoke", WORK_EVENT), vec![direct.pid()], false),
            ("runtime computing per request, through openfc", Call::post(&signer, &echo, WORK_EVENT), vec![openfc.pid()], false),
        ];
        if let (Some(n), Some(q)) = (&nginx, &nginx_quiet) {
            let (ns, qs) = (Arc::new(signer.for_addr(n.addr)), Arc::new(signer.for_addr(q.addr)));
            runs.insert(1, ("runtime server behind nginx", Call::post(&ns, "/invoke", EVENT), vec![n.pid(), direct.pid()], true));
            runs.insert(2, ("runtime server behind nginx, access_log off", Call::post(&qs, "/invoke", EVENT), vec![q.pid(), direct.pid()], false));
        }
        let mut rows = Vec::new();
        let mut got = std::collections::HashMap::new();
        for (name, (r, cpu, errors)) in best_of(ROUNDS, runs, 16, seconds, |r| r.per_sec).await? {
            rows.push(check(format!("c=16 {name}: errors"), errors.to_string(), "0", errors == 0));
            let mut figure = load_figure(&r, cpu);
            if r.instances > 0 {
                figure.push_str(&format!(", {} instance(s)", r.instances));
            }
            let repeated = ["runtime server called directly", "runtime server behind nginx", "invoke through openfc"].contains(&name);
            rows.push(info(if repeated { format!("c=16 {name} (best of {ROUNDS})") } else { format!("c=16 {name}") }, figure));
            got.insert(name, (r.per_sec, cpu));
        }
        let rate = |n: &str| got.get(n).map_or(0.0, |g| g.0).max(f64::MIN_POSITIVE);
        let cpu = |n: &str| got.get(n).map_or(0.0, |g| micros(g.1.cpu));
        let sleeps = |n: &str| got.get(n).map_or(0.0, |g| g.1.sleeps);
        let openfc_rate = rate("invoke through openfc");
        if got.contains_key("runtime server behind nginx") {
            let ratio = openfc_rate / rate("runtime server behind nginx");
            rows.push(check("c=16 invoke throughput: openfc / nginx", format!("{ratio:.2}"), "≥ 0.60", ratio >= 0.60));
            let quiet = openfc_rate / rate("runtime server behind nginx, access_log off");
            rows.push(info("c=16 invoke throughput: openfc / nginx without access log", format!("{quiet:.2}")));
            let nginx_direct = rate("runtime server behind nginx") / rate("runtime server called directly");
            rows.push(info("c=16 throughput: nginx / direct", format!("{nginx_direct:.2}")));
        }
        rows.push(info("c=16 invoke throughput: openfc / direct", format!("{:.2}", openfc_rate / rate("runtime server called directly"))));
        let work = rate("runtime computing per request, through openfc") / rate("runtime computing per request, called directly");
        rows.push(info("c=16 throughput / direct, runtime computing per request (not a target's measure)", format!("{work:.2}")));

        let (invoke_cpu, get_cpu, direct_cpu) =
            (cpu("invoke through openfc"), cpu("signed GetFunction on the same openfc"), cpu("runtime server called directly"));
        rows.push(info(
            "c=16 CPU per invocation, openfc + instance / signed GetFunction",
            format!("{invoke_cpu:.1} / {get_cpu:.1} µs = {:.2}×", invoke_cpu / get_cpu.max(f64::MIN_POSITIVE)),
        ));
        if got.contains_key("runtime server behind nginx") {
            let nginx_cpu = cpu("runtime server behind nginx");
            rows.push(info(
                "c=16 CPU per request beyond the runtime's own: openfc / nginx",
                format!(
                    "{:.1} / {:.1} µs (runtime alone {direct_cpu:.1} µs)",
                    invoke_cpu - direct_cpu,
                    nginx_cpu - direct_cpu
                ),
            ));
            let direct = sleeps("runtime server called directly");
            rows.push(info(
                "c=16 sleeps (voluntary context switches) per request beyond the runtime's own: openfc / nginx",
                format!(
                    "{:.2} / {:.2} (runtime alone {direct:.2})",
                    sleeps("invoke through openfc") - direct,
                    sleeps("runtime server behind nginx") - direct
                ),
            ));
        }
        anyhow::Ok(rows)
    }
    .await;
    let mut rows = result.map_err(|e| e.context(openfc.log_tail()))?;
    drop((nginx, nginx_quiet, direct));
    rows.extend(log_rows("c=16 openfc", openfc));
    Ok(rows)
}

/// Debian's nginx, wherever it is installed.
fn nginx_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("nginx"));
    [PathBuf::from("/usr/sbin/nginx")].into_iter().chain(on_path).find(|p| p.is_file())
}

/// An nginx master (and its workers) on a private configuration in a temp directory, proxying a free
/// loopback port to `upstream` over keep-alive connections; stopped (SIGTERM, then SIGKILL) when dropped.
struct Nginx {
    addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    async fn start(bin: &Path, upstream: SocketAddr, workers: usize, cpus: Option<&str>) -> anyhow::Result<Self> {
        Self::start_with(bin, upstream, workers, cpus, true).await
    }

    async fn start_with(bin: &Path, upstream: SocketAddr, workers: usize, cpus: Option<&str>, access_log: bool) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("openfc-bench-nginx-").tempdir()?;
        let d = dir.path().display().to_string();
        let port = procs::free_port()?;
        let access = if access_log { format!("access_log {d}/access.log;") } else { "access_log off;".to_owned() };
        let conf = format!(
            "worker_processes {workers};\n\
             daemon off;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
             \x20   {access}\n\
             \x20   client_body_temp_path {d}/body;\n\
             \x20   proxy_temp_path {d}/proxy;\n\
             \x20   fastcgi_temp_path {d}/fastcgi;\n\
             \x20   uwsgi_temp_path {d}/uwsgi;\n\
             \x20   scgi_temp_path {d}/scgi;\n\
             \x20   keepalive_requests 1000000;\n\
             \x20   upstream runtime {{ server {upstream}; keepalive 64; keepalive_requests 1000000; }}\n\
             \x20   server {{\n\
             \x20       listen 127.0.0.1:{port};\n\
             \x20       location / {{\n\
             \x20           proxy_pass http://runtime;\n\
             \x20           proxy_http_version 1.1;\n\
             \x20           proxy_set_header Connection \"\";\n\
             \x20       }}\n\
             \x20   }}\n\
             }}\n"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let mut cmd = match cpus {
            Some(c) => {
                let mut cmd = Command::new("taskset");
                cmd.args(["-c", c]).arg(bin);
                cmd
            }
            None => Command::new(bin),
        };
        // -e: the error log before the configuration is read (else the compiled-in /var/log path); -p: the prefix.
        let child = cmd
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut nginx = Nginx { addr: ([127, 0, 0, 1], port).into(), child, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = nginx.child.try_wait()? {
                let log = std::fs::read_to_string(nginx._dir.path().join("error.log")).unwrap_or_default();
                anyhow::bail!("nginx exited at start ({status}): {log}");
            }
            if let Ok(mut conn) = Conn::open(nginx.addr).await
                && let Ok((200, _)) = conn.call(plain_get(nginx.addr, "/")).await
            {
                return Ok(nginx);
            }
            if Instant::now() > deadline {
                anyhow::bail!("nginx did not answer on {} within 10 s", nginx.addr);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // TERM: the master stops its workers at once.
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).stderr(Stdio::null()).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
