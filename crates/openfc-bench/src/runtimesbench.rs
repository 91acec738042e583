//! Built-in runtimes (`scripts/bench.sh runtimes`, issue 17 item 7): cold start and warm invoke per runtime — go1,
//! java11, php7.2, with python3.10 and a custom runtime as references — each next to its bare start in the same run.
//!
//! 1. Bare starts, spawned by this process and waited for (1 unmeasured + `BARE_RUNS`): `java -cp DIR Hello` (the
//!    JDK openfc runs, default options), `php -r ''`, a Go hello binary (built here with `go build`),
//!    `python3 -c pass`.
//! 2. Cold starts on one openfc (`--prestarted-runtimes 2`, openfc's default): for each runtime `RUNS` distinct
//!    functions (each its own package: a file naming it), each invoked once, end to end (signed InvokeFunction on
//!    a keep-alive connection; the package's unpack included). One unmeasured cold start per runtime first (for
//!    Java it also builds the shim with javac and asks for JVMs of 128 MB). Before each sample, outside the
//!    timing, `/health` must show the pools full (Python, PHP, Java of 128 MB, warm sandboxes) and openfc's
//!    process tree quiet. Samples are taken in rounds (the i-th function of every runtime, then the next), so the
//!    host's load drifting over the run weighs on all runtimes alike. go1 and the custom runtime run the same small Go program shape (an echo): go1's speaks
//!    the Runtime API served inside the instance, the custom one is an HTTP server on caPort — so the go1 row
//!    minus the custom row is the Runtime API's cost. Then java11 and php7.2 again on an openfc with
//!    `--prestarted-runtimes 0` (fresh JVM and PHP per cold start).
//! 3. Warm invoke: `WARM_RUNS` sequential invocations of one warm function per runtime, p50 and p99, and the p50
//!    minus the custom runtime's (what the runtime's shim or protocol adds to openfc's own hop).

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper::Method;
use zip::write::SimpleFileOptions;

use crate::client::{Conn, Signer};
use crate::invoke::{FUNCTIONS, invoke_once};
use crate::load::percentile;
use crate::prestartbench::{bare_start, metrics, min_p50_max, ms, phase_means, phases_figure, start_openfc, wait_ready_for};
use crate::procs::Openfc;
use crate::{Row, check, info, us};

/// Per runtime: its cold-start times, how many of them a pre-started runtime served, and its cold-start phases.
type Samples = (Vec<Duration>, f64, Vec<(String, f64)>);

/// Measured cold starts per runtime (distinct functions) and bare starts per program.
const RUNS: usize = 12;
const BARE_RUNS: usize = 12;
const WARM_RUNS: usize = 300;
const POOL: usize = 2;
const JDK_BIN: &str = "/usr/lib/jvm/java-17-openjdk-amd64/bin";
const PHP: &str = "/usr/bin/php8.2";
const PYTHON: &str = "/usr/bin/python3";
const GO: &str = "/usr/bin/go";

const GO_RUNTIME_API: &str = r#"package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
)

func main() {
	base := "http://" + os.Getenv("FC_RUNTIME_API") + "/2020-11-11/runtime/invocation/"
	for {
		resp, err := http.Get(base + "next")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r, err := http.Post(base+resp.Header.Get("x-fc-request-id")+"/response", "application/octet-stream", bytes.NewReader(body))
		if err == nil {
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
	}
}
"#;

const GO_CUSTOM: &str = r#"package main

import (
	"io"
	"net/http"
	"os"
)

func main() {
	port := os.Getenv("FC_CUSTOM_LISTEN_PORT")
	if port == "" {
		port = "9000"
	}
	http.ListenAndServe("0.0.0.0:"+port, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
	}))
}
"#;

const GO_HELLO: &str = "package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(\"hello\\n\") }\n";

const JAVA_HELLO: &str = "public class Hello { public static void main(String[] a) { System.out.println(\"hello\"); } }\n";

const JAVA_ECHO: &str = r#"package bench;

import com.aliyun.fc.runtime.Context;
import com.aliyun.fc.runtime.StreamRequestHandler;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

public class Echo implements StreamRequestHandler {
    @Override
    public void handleRequest(InputStream in, OutputStream out, Context context) throws IOException {
        byte[] b = new byte[8192];
        int n;
        while ((n = in.read(b)) > 0) {
            out.write(b, 0, n);
        }
    }
}
"#;

const PHP_ECHO: &str = "<?php\nfunction handler($event, $context) {\n    return $event;\n}\n";
const PYTHON_ECHO: &str = "def handler(event, context):\n    return event\n";

/// One runtime under test: its functions' fields and package, its bare start, its pool key.
struct Rt {
    label: &'static str,
    runtime: &'static str,
    handler: &'static str,
    /// Files of the package (name, bytes, mode); a file naming the function is added per function.
    files: Vec<(&'static str, Vec<u8>, u32)>,
    /// `/health` pool key whose waiting runtimes a cold start takes, if any.
    pool_key: Option<&'static str>,
    bare: Option<(String, Vec<String>)>,
}

/// Built programs and packages (blocking: javac and go build).
struct Built {
    dir: tempfile::TempDir,
    runtimes: Vec<Rt>,
}

fn run_cmd(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn go_build(dir: &Path, name: &str, source: &str) -> anyhow::Result<Vec<u8>> {
    let src = dir.join(format!("{name}.go"));
    std::fs::write(&src, source)?;
    let out = dir.join(name);
    run_cmd(
        Command::new(GO)
            .arg("build")
            // Stripped: the package's unpack is part of every cold start (go1 and custom alike).
            .args(["-ldflags", "-s -w"])
            .arg("-o")
            .arg(&out)
            .arg(&src)
            .current_dir(dir)
            .env("CGO_ENABLED", "0")
            .env("GOFLAGS", "-buildvcs=false")
            .env("GO111MODULE", "off")
            .env("GOCACHE", dir.join("gocache"))
            .env("GOPATH", dir.join("gopath")),
        &format!("go build {name}"),
    )?;
    Ok(std::fs::read(out)?)
}

fn java_echo_jar(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let javac = Path::new(JDK_BIN).join("javac");
    let api = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../openfc-invoker/runtimes/java/api"));
    let mut sources: Vec<PathBuf> = Vec::new();
    let mut stack = vec![api];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "java") {
                sources.push(p);
            }
        }
    }
    let (api_out, out) = (dir.join("api-classes"), dir.join("echo-classes"));
    run_cmd(Command::new(&javac).args(["--release", "8", "-nowarn", "-d"]).arg(&api_out).args(&sources), "javac (fc-java-core copies)")?;
    let src = dir.join("bench/Echo.java");
    std::fs::create_dir_all(src.parent().expect("parent"))?;
    std::fs::write(&src, JAVA_ECHO)?;
    run_cmd(Command::new(&javac).args(["--release", "8", "-nowarn", "-cp"]).arg(&api_out).arg("-d").arg(&out).arg(&src), "javac Echo")?;
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().unix_permissions(0o644);
    zip.start_file("META-INF/MANIFEST.MF", opts)?;
    zip.write_all(b"Manifest-Version: 1.0\r\n\r\n")?;
    zip.start_file("bench/Echo.class", opts)?;
    zip.write_all(&std::fs::read(out.join("bench/Echo.class"))?)?;
    Ok(zip.finish()?.into_inner())
}

fn build() -> anyhow::Result<Built> {
    let dir = tempfile::Builder::new().prefix("openfc-bench-runtimes-").tempdir()?;
    let d = dir.path();
    let go_api = go_build(d, "goapi", GO_RUNTIME_API)?;
    let go_custom = go_build(d, "gocustom", GO_CUSTOM)?;
    go_build(d, "hello", GO_HELLO)?;
    std::fs::write(d.join("Hello.java"), JAVA_HELLO)?;
    run_cmd(Command::new(Path::new(JDK_BIN).join("javac")).arg("-d").arg(d).arg(d.join("Hello.java")), "javac Hello")?;
    let jar = java_echo_jar(d)?;
    let s = |x: &str| x.to_owned();
    let runtimes = vec![
        Rt {
            label: "custom (Go HTTP server)",
            runtime: "custom",
            handler: "index.handler",
            files: vec![("bootstrap", go_custom, 0o755)],
            pool_key: None,
            bare: Some((d.join("hello").display().to_string(), vec![])),
        },
        Rt {
            label: "go1 (Runtime API)",
            runtime: "go1",
            handler: "main",
            files: vec![("main", go_api, 0o755)],
            pool_key: None,
            bare: Some((d.join("hello").display().to_string(), vec![])),
        },
        Rt {
            label: "java11",
            runtime: "java11",
            handler: "bench.Echo::handleRequest",
            files: vec![("lib/echo.jar", jar, 0o644)],
            pool_key: Some("java"),
            bare: Some((format!("{JDK_BIN}/java"), vec![s("-cp"), d.display().to_string(), s("Hello")])),
        },
        Rt {
            label: "php7.2",
            runtime: "php7.2",
            handler: "index.handler",
            files: vec![("index.php", PHP_ECHO.as_bytes().to_vec(), 0o644)],
            pool_key: Some("php"),
            bare: Some((s(PHP), vec![s("-r"), s("")])),
        },
        Rt {
            label: "python3.10",
            runtime: "python3.10",
            handler: "index.handler",
            files: vec![("index.py", PYTHON_ECHO.as_bytes().to_vec(), 0o644)],
            pool_key: Some("python"),
            bare: Some((s(PYTHON), vec![s("-c"), s("pass")])),
        },
    ];
    Ok(Built { dir, runtimes })
}

fn zip_for(rt: &Rt, function: &str) -> anyhow::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes, mode) in &rt.files {
        zip.start_file(*name, SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).unix_permissions(*mode))?;
        zip.write_all(bytes)?;
    }
    zip.start_file("function-name.txt", SimpleFileOptions::default().unix_permissions(0o644))?;
    zip.write_all(function.as_bytes())?;
    Ok(zip.finish()?.into_inner())
}

async fn create(conn: &mut Conn, signer: &Signer, rt: &Rt, name: &str) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "functionName": name,
        "runtime": rt.runtime,
        "handler": rt.handler,
        "timeout": 10,
        "memorySize": 128,
        "code": {"zipFile": STANDARD.encode(zip_for(rt, name)?)},
    })
    .to_string();
    conn.call_ok(signer.request(Method::POST, FUNCTIONS, body.into())).await?;
    Ok(())
}

fn fname(rt: &Rt, pool: usize, i: usize) -> String {
    format!("{}-p{pool}-{i}", rt.runtime.replace('.', "_"))
}

struct Cold {
    times: Vec<Duration>,
    from_pool: usize,
    phases: Vec<(String, f64)>,
    warm: Option<(Duration, Duration)>,
    /// `/health`'s resident memory per waiting runtime of this pool, once it is full again.
    rss: Option<f64>,
}

/// The pools a cold start may take from, for `wait_ready_for` (Java's only once a 128 MB JVM was asked for).
fn pool_keys(pool: usize, java_asked: bool) -> Vec<&'static str> {
    let mut keys = if pool == 0 { Vec::new() } else { vec!["python", "php"] };
    if java_asked && pool > 0 {
        keys.push("java");
    }
    keys
}

/// Cold starts of `which` runtimes on an openfc with `pool` pre-started runtimes; with `warm`, the warm figures too.
async fn cold_run(openfc_bin: &Path, pool: usize, runtimes: &[&Rt], warm: bool) -> anyhow::Result<(Vec<Cold>, Vec<Row>)> {
    let (openfc, signer, mut conn) = start_openfc(openfc_bin, pool).await?;
    let result = async {
        for rt in runtimes {
            for i in 0..=RUNS {
                create(&mut conn, &signer, rt, &fname(rt, pool, i)).await?;
            }
        }
        // One unmeasured cold start per runtime first (Java's builds the shim and asks for 128 MB JVMs).
        for rt in runtimes {
            wait_ready_for(&openfc, &pool_keys(pool, false), pool).await?;
            let (first, _) = invoke_once(&mut conn, &signer, &fname(rt, pool, 0)).await?;
            eprintln!("{} (pool {pool}): first cold start, unmeasured: {}", rt.label, ms(first));
        }
        let keys = pool_keys(pool, runtimes.iter().any(|r| r.pool_key == Some("java")));
        // Rounds in alternation (sample i of every runtime, then i + 1), so that the host's load drifting over
        // the run weighs on every runtime alike; the metrics are read around each sample.
        let mut samples: Vec<Samples> = runtimes.iter().map(|_| (Vec::new(), 0.0, Vec::new())).collect();
        for i in 1..=RUNS {
            for (k, rt) in runtimes.iter().enumerate() {
                wait_ready_for(&openfc, &keys, pool).await?;
                let before = metrics(openfc.addr()).await?;
                let t = invoke_once(&mut conn, &signer, &fname(rt, pool, i)).await?.0;
                let after = metrics(openfc.addr()).await?;
                let (times, used, phases) = &mut samples[k];
                times.push(t);
                *used += after.used - before.used;
                for (phase, v) in phase_means(&before, &after) {
                    match phases.iter_mut().find(|(p, _)| *p == phase) {
                        Some((_, sum)) => *sum += v,
                        None => phases.push((phase, v)),
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (rt, (mut times, used, phases)) in runtimes.iter().zip(samples) {
            times.sort_unstable();
            eprintln!("{} (pool {pool}): min / p50 / max {}", rt.label, min_p50_max(&times));
            let warm = if warm { Some(warm_sample(&signer, &fname(rt, pool, 1)).await?) } else { None };
            let rss = match rt.pool_key {
                Some(key) if pool > 0 => {
                    let h = wait_ready_for(&openfc, &keys, pool).await?;
                    let p = &h["prestarted_runtimes"][key];
                    let n = p["waiting"].as_u64().unwrap_or(0);
                    (n > 0).then(|| p["rss_bytes"].as_u64().unwrap_or(0) as f64 / n as f64 / 1e6)
                }
                _ => None,
            };
            let phases = phases.into_iter().map(|(p, sum)| (p, sum / RUNS as f64)).collect();
            out.push(Cold { times, from_pool: used.round() as usize, phases, warm, rss });
        }
        anyhow::Ok(out)
    }
    .await;
    drop(conn);
    let colds = result.map_err(|e| e.context(openfc.log_tail()))?;
    let log = log_rows(&format!("openfc (pool {pool}, runtimes)"), openfc);
    Ok((colds, log))
}

fn log_rows(label: &str, openfc: Openfc) -> Vec<Row> {
    crate::invoke::log_rows(label, openfc)
}

/// `WARM_RUNS` sequential invocations of a warm function: p50 and p99.
async fn warm_sample(signer: &Arc<Signer>, function: &str) -> anyhow::Result<(Duration, Duration)> {
    let mut conn = Conn::open(signer.addr).await?;
    for _ in 0..20 {
        invoke_once(&mut conn, signer, function).await?;
    }
    let mut times = Vec::with_capacity(WARM_RUNS);
    for _ in 0..WARM_RUNS {
        times.push(invoke_once(&mut conn, signer, function).await?.0);
    }
    times.sort_unstable();
    Ok((percentile(&times, 50.0), percentile(&times, 99.0)))
}

pub async fn run(openfc_bin: &Path) -> anyhow::Result<Vec<Row>> {
    let started = Instant::now();
    let built = tokio::task::spawn_blocking(build).await??;
    eprintln!("runtimes: programs and packages built in {}", built.dir.path().display());
    let mut rows = Vec::new();

    // 1. Bare starts.
    let mut bare = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for rt in &built.runtimes {
        let Some((program, args)) = rt.bare.clone() else {
            bare.push(None);
            continue;
        };
        let what = if program.ends_with("/hello") { "a Go hello binary".to_owned() } else { format!("{program} {}", args.join(" ")) };
        let t = tokio::task::spawn_blocking(move || {
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            bare_start(&program, &argv)?;
            let mut t = (0..BARE_RUNS).map(|_| bare_start(&program, &argv)).collect::<anyhow::Result<Vec<_>>>()?;
            t.sort_unstable();
            anyhow::Ok(t)
        })
        .await??;
        if !seen.contains(&what) {
            rows.push(info(format!("bare start: `{what}` (spawn → exit), min / p50 / max of {BARE_RUNS}"), min_p50_max(&t)));
            seen.push(what);
        }
        bare.push(Some(percentile(&t, 50.0)));
    }

    // 2. and 3. Cold starts with the pool on (and warm figures), then Java and PHP with it off.
    let all: Vec<&Rt> = built.runtimes.iter().collect();
    eprintln!("cold starts with --prestarted-runtimes {POOL}");
    let (on, log_on) = cold_run(openfc_bin, POOL, &all, true).await?;
    let fresh: Vec<&Rt> = built.runtimes.iter().filter(|r| matches!(r.runtime, "java11" | "php7.2")).collect();
    eprintln!("cold starts with --prestarted-runtimes 0");
    let (off, log_off) = cold_run(openfc_bin, 0, &fresh, false).await?;

    let p50 = |c: &Cold| percentile(&c.times, 50.0);
    let custom_cold = p50(&on[0]);
    let custom_warm = on[0].warm.map(|w| w.0).unwrap_or_default();
    for (i, rt) in built.runtimes.iter().enumerate() {
        let c = &on[i];
        let cold = p50(c);
        let mut figure = format!("{} (min / p50 / max {})", ms(cold), min_p50_max(&c.times));
        if let Some(b) = bare[i] {
            figure.push_str(&format!("; bare start p50 {}", ms(b)));
        }
        let label = format!("{} cold invoke, p50 of {RUNS} functions", rt.label);
        rows.push(match rt.runtime {
            "go1" => {
                let over = cold.as_secs_f64() * 1e3 - custom_cold.as_secs_f64() * 1e3;
                figure.push_str(&format!("; {over:+.1} ms vs custom"));
                check(label, figure, "≤ custom + 3 ms", over <= 3.0)
            }
            "java11" => {
                let b = bare[i].unwrap_or_default();
                check(label, figure, "< bare JVM start", cold < b)
            }
            "php7.2" => check(label, figure, "< 20 ms", cold < Duration::from_millis(20)),
            _ => info(label, figure),
        });
        if let Some(key) = rt.pool_key {
            rows.push(check(
                format!("{} cold invoke: served by a pre-started runtime ({key})", rt.label),
                format!("{}/{RUNS}", c.from_pool),
                "all",
                c.from_pool == RUNS,
            ));
        }
        rows.push(info(format!("{} cold invoke: phases (mean of openfc_cold_start_seconds)", rt.label), phases_figure(&c.phases, Some(cold))));
        if let (Some(mb), Some(key)) = (c.rss, rt.pool_key) {
            rows.push(info(format!("{} /health rss_bytes per waiting {key} runtime (launcher + init + runtime)", rt.label), format!("{mb:.1} MB")));
        }
        if let Some((w50, w99)) = c.warm {
            let over = w50.as_secs_f64() * 1e6 - custom_warm.as_secs_f64() * 1e6;
            rows.push(info(
                format!("{} warm invoke, {WARM_RUNS} sequential", rt.label),
                format!("p50 {}, p99 {}; p50 {over:+.0} µs vs custom", us(w50), us(w99)),
            ));
        }
    }
    for (rt, c) in fresh.iter().zip(&off) {
        let i = built.runtimes.iter().position(|r| r.runtime == rt.runtime).expect("runtime");
        let mut figure = format!("{} (min / p50 / max {})", ms(p50(c)), min_p50_max(&c.times));
        if let Some(b) = bare[i] {
            figure.push_str(&format!("; bare start p50 {}", ms(b)));
        }
        rows.push(info(format!("{} cold invoke, pre-started runtimes off, p50 of {RUNS} functions", rt.label), figure));
        rows.push(check(format!("{} cold invoke, pool off: served by a pre-started runtime", rt.label), format!("{}/{RUNS}", c.from_pool), "0", c.from_pool == 0));
        rows.push(info(format!("{} cold invoke, pool off: phases (mean)", rt.label), phases_figure(&c.phases, Some(p50(c)))));
    }
    rows.extend(log_on);
    rows.extend(log_off);
    eprintln!("runtimes part took {:.1} s", started.elapsed().as_secs_f64());
    Ok(rows)
}
