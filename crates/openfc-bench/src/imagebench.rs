//! The custom-container benchmark (`scripts/bench.sh images`, issue 16 item 8). Everything it needs is made
//! in the run, without Docker: a Debian `docker-registry` on 127.0.0.1 at a free port (never :5000), images
//! built with umoci from layer tars (GNU tar, owners 0, fixed mtime) and pushed with skopeo (Docker v2s2
//! manifests, gzip layers).
//!
//! 1. Pull + unpack of a ~200 MB image (the busybox base layer and a layer of `BIG_FILES` files of random
//!    bytes): `openfc images pull REF` into a fresh data dir, against `skopeo copy docker://REF oci:DIR:bench`
//!    followed by `umoci unpack --rootless --image DIR:bench OUT` (both commands in one wall time), each
//!    `PULL_RUNS` times, alternating which goes first, fresh directories each time, `sync` before each
//!    timed run. Figure: median (min, max) of each and the ratio of the medians.
//! 2. Cold start of a Ready image against a `custom` runtime function running the same server: the server
//!    is this very binary as a custom runtime (see `runtime`); the image holds it as `/bootstrap` (ENTRYPOINT)
//!    next to the shared libraries `ldd` names, over the busybox base layer, and the custom function's zip
//!    holds it as `/code/bootstrap`. Both functions have the same memory, timeout and caPort. Each sample
//!    is an UpdateFunction (a new description: a new instance pool, the image pull kept) and then one
//!    timed synchronous invocation; the two functions alternate, `COLD_RUNS` samples each, after one
//!    unmeasured invocation each. Figure: min/p50/max end to end and p50(container) − p50(custom), with the
//!    mean of openfc's `openfc_cold_start_seconds{phase}` over each function's samples.
//! 3. Disk used by two images that share their base layer (busybox plus `SHARED_FILES` random files, one
//!    layer) under a small layer of their own: each pulled alone into a fresh data dir, then both into one;
//!    bytes of `images/blobs` and `images/trees` (file bytes, hard links once; and blocks allocated), and
//!    what the shared layer saved = sum of the two alone − both together.
//!
//! Figures, not a test: it fails only when it cannot measure.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hyper::{HeaderMap, Method};
use rand::RngCore;

use crate::client::{Conn, Signer, plain_get};
use crate::invoke::{bootstrap_zip, log_rows};
use crate::load::percentile;
use crate::procs::{self, Openfc};
use crate::{Row, check, info};

#[path = "imagefixture.rs"]
mod fixture;
use fixture::*;

const SERVICES: &str = "/2016-08-15/services";
const FUNCTIONS: &str = "/2016-08-15/services/bench/functions";
const EVENT: &[u8] = br#"{"hello":"openfc"}"#;
const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &["sh", "ls", "cat", "echo", "env", "id", "sleep", "true", "false", "test"];
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";
/// 2020-01-01: every layer's tar has the same mtimes.
const MTIME: &str = "@1577836800";
const TOOLS: &[&str] = &["docker-registry", "skopeo", "umoci", "tar", "ldd", "sync"];

/// The big image's own layer: this many files of random bytes.
const BIG_FILES: usize = 4;
const BIG_FILE_BYTES: usize = 50_000_000;
const PULL_RUNS: usize = 5;
const COLD_RUNS: usize = 25;
/// Between a sample's UpdateFunction and its timed invocation (outside the timing): the old pool winds
/// down and openfc's warm sandbox launchers are refilled, as between real deployments.
const COLD_PAUSE: Duration = Duration::from_millis(200);
/// Part 3: the shared base layer's random files, and each image's own layer.
const SHARED_FILES: usize = 4;
const SHARED_FILE_BYTES: usize = 8_000_000;
const OWN_LAYER_BYTES: usize = 4_000_000;

const REGISTRY_CONFIG: &str = "version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ROOT
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
  secret: openfc-bench
";

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// min / median / max of sorted durations, as `median (min – max)`.
fn spread(sorted: &[Duration], fmt: fn(Duration) -> String) -> String {
    format!(
        "{} (min {}, max {})",
        fmt(percentile(sorted, 50.0)),
        fmt(sorted[0]),
        fmt(*sorted.last().expect("at least one run"))
    )
}

pub async fn run(openfc_bin: &Path) -> anyhow::Result<Vec<Row>> {
    let missing: Vec<&str> = TOOLS.iter().copied().filter(|t| !on_path(t)).chain((!Path::new(BUSYBOX).exists()).then_some(BUSYBOX)).collect();
    if !missing.is_empty() {
        eprintln!("images: cannot measure without {} (apt-get install docker-registry skopeo umoci busybox-static)", missing.join(", "));
        return Ok(vec![check("custom-container images", format!("not measured: {} missing", missing.join(", ")), "", false)]);
    }
    let openfc_bin = std::fs::canonicalize(openfc_bin).with_context(|| format!("{} not found", openfc_bin.display()))?;
    // Field order: the registry stops before its storage goes.
    let work = tempfile::Builder::new().prefix("openfc-imagebench-").tempdir()?;
    let registry = Registry::start(work.path()).await?;
    eprintln!("docker-registry on {}, work dir {}", registry.host, work.path().display());
    let started = Instant::now();
    let images = {
        let (dir, host) = (work.path().to_owned(), registry.host.clone());
        tokio::task::spawn_blocking(move || build_and_push(&dir, &host)).await??
    };
    eprintln!("images built and pushed in {:.1} s", started.elapsed().as_secs_f64());

    let mut rows = Vec::new();
    {
        let (bin, dir, imgs) = (openfc_bin.clone(), work.path().to_owned(), images.clone());
        match tokio::task::spawn_blocking(move || pull_vs_baseline(&bin, &dir, &imgs)).await? {
            Ok(r) => rows.extend(r),
            Err(e) => {
                eprintln!("pull benchmark failed: {e:#}");
                rows.push(check("pull + unpack of the ~200 MB image", "FAILED (see above)", "", false));
            }
        }
    }
    match cold_starts(&openfc_bin, &images).await {
        Ok(r) => rows.extend(r),
        Err(e) => {
            eprintln!("cold-start benchmark failed: {e:#}");
            rows.push(check("custom-container cold start", "FAILED (see above)", "", false));
        }
    }
    {
        let (bin, dir, imgs) = (openfc_bin.clone(), work.path().to_owned(), images.clone());
        match tokio::task::spawn_blocking(move || shared_disk(&bin, &dir, &imgs)).await? {
            Ok(r) => rows.extend(r),
            Err(e) => {
                eprintln!("disk benchmark failed: {e:#}");
                rows.push(check("disk of two images sharing a base layer", "FAILED (see above)", "", false));
            }
        }
    }
    drop(registry);
    Ok(rows)
}

/// Bytes under a directory: file (and symlink) bytes, and blocks allocated (directories included); each
/// inode once.
#[derive(Clone, Copy, Default)]
struct Usage {
    files: u64,
    allocated: u64,
}

impl std::ops::Add for Usage {
    type Output = Usage;
    fn add(self, o: Usage) -> Usage {
        Usage { files: self.files + o.files, allocated: self.allocated + o.allocated }
    }
}

fn usage(root: &Path) -> Usage {
    let (mut u, mut seen, mut stack) = (Usage::default(), HashSet::new(), vec![root.to_owned()]);
    while let Some(p) = stack.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
        if !seen.insert((m.dev(), m.ino())) {
            continue;
        }
        u.allocated += m.blocks() * 512;
        if m.is_dir() {
            stack.extend(std::fs::read_dir(&p).into_iter().flatten().flatten().map(|e| e.path()));
        } else {
            u.files += m.len();
        }
    }
    u
}

fn sync() {
    let _ = Command::new("sync").status();
}

/// `openfc images pull REF` into `data`; returns the wall time and openfc's output.
fn openfc_pull(openfc: &Path, host: &str, data: &Path, reference: &str) -> anyhow::Result<(Duration, String)> {
    let mut c = Command::new(openfc);
    c.args(["images", "--insecure-registry", host, "--data-dir"]).arg(data).arg("pull").arg(reference);
    let start = Instant::now();
    let out = run_cmd(&mut c)?;
    Ok((start.elapsed(), out))
}

/// Part 1.
fn pull_vs_baseline(openfc: &Path, work: &Path, images: &Images) -> anyhow::Result<Vec<Row>> {
    let compressed: u64 = images.big_layers.iter().map(|(_, s)| s).sum();
    let (mut ours, mut theirs, mut skopeo_only) = (Vec::new(), Vec::new(), Vec::new());
    let (mut our_usage, mut their_usage) = (Usage::default(), Usage::default());
    let mut our_output = String::new();
    for round in 0..PULL_RUNS {
        for ours_now in if round % 2 == 0 { [true, false] } else { [false, true] } {
            let dir = work.join(format!("pull-{round}-{}", if ours_now { "openfc" } else { "baseline" }));
            sync();
            if ours_now {
                eprintln!("pull {}/{PULL_RUNS}: openfc images pull {}", round + 1, images.big);
                let (t, out) = openfc_pull(openfc, &images.host, &dir.join("data"), &images.big)?;
                ours.push(t);
                our_usage = usage(&dir.join("data/images"));
                our_output = out;
            } else {
                eprintln!("pull {}/{PULL_RUNS}: skopeo copy + umoci unpack --rootless {}", round + 1, images.big);
                let oci = format!("oci:{}:bench", dir.join("layout").display());
                let bench_image = format!("{}:bench", dir.join("layout").display());
                std::fs::create_dir_all(&dir)?;
                let start = Instant::now();
                run_cmd(&mut cmd("skopeo", &["--insecure-policy", "copy", "-q", "--src-tls-verify=false", &format!("docker://{}", images.big), &oci]))?;
                let copied = start.elapsed();
                run_cmd(cmd("umoci", &["unpack", "--rootless", "--image", &bench_image]).arg(dir.join("bundle")))?;
                theirs.push(start.elapsed());
                skopeo_only.push(copied);
                their_usage = usage(&dir);
            }
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
    }
    for line in our_output.lines().filter(|l| !l.trim().is_empty()) {
        eprintln!("  openfc: {line}");
    }
    for v in [&mut ours, &mut theirs, &mut skopeo_only] {
        v.sort_unstable();
    }
    let (o, t) = (percentile(&ours, 50.0), percentile(&theirs, 50.0));
    let ratio = o.as_secs_f64() / t.as_secs_f64().max(1e-9);
    Ok(vec![
        info(
            "~200 MB image: layers, compressed (registry) bytes",
            format!("{} layers (busybox + {BIG_FILES} × {} random), {}", images.big_layers.len(), mb(BIG_FILE_BYTES as u64), mb(compressed)),
        ),
        info(
            "  on disk after the pull: openfc data/images | skopeo layout + umoci bundle",
            format!("{} | {} (file bytes)", mb(our_usage.files), mb(their_usage.files)),
        ),
        info(format!("openfc images pull, fresh data dir: median of {PULL_RUNS}"), spread(&ours, secs)),
        info(format!("skopeo copy + umoci unpack --rootless: median of {PULL_RUNS}"), spread(&theirs, secs)),
        info("  of which skopeo copy alone: median", spread(&skopeo_only, secs)),
        check("pull + unpack time, openfc / (skopeo + umoci), medians", format!("{ratio:.2}×"), "≤ 1.0×", ratio <= 1.0),
    ])
}

/// One timed synchronous invocation that must echo the event; (latency, instance id).
async fn invoke(conn: &mut Conn, signer: &Signer, function: &str) -> anyhow::Result<(Duration, String)> {
    let req = signer.request(Method::POST, &format!("{FUNCTIONS}/{function}/invocations"), Bytes::from_static(EVENT));
    let start = Instant::now();
    let (status, headers, body) = conn.call_full(req).await?;
    let elapsed = start.elapsed();
    let text = || String::from_utf8_lossy(&body).into_owned();
    if status != 200 {
        bail!("invoking {function}: HTTP {status}: {}", text());
    }
    if let Some(t) = headers.get("x-fc-error-type") {
        bail!("invoking {function}: function error {t:?}: {}", text());
    }
    if body != EVENT {
        bail!("invoking {function}: the answer is not the event: {}", text());
    }
    Ok((elapsed, instance_id(&headers)))
}

fn instance_id(headers: &HeaderMap) -> String {
    headers.get("x-fc-instance-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
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

/// Cold samples of one function.
#[derive(Default)]
struct ColdSamples {
    times: Vec<Duration>,
    instances: HashSet<String>,
    /// phase → (seconds, count) added over this function's samples.
    phases: BTreeMap<String, (f64, f64)>,
}

impl ColdSamples {
    fn phases_figure(&self) -> String {
        let parts: Vec<String> = ["image", "unpack", "sandbox", "runtime_ready", "initializer", "total"]
            .iter()
            .filter_map(|p| self.phases.get(*p).filter(|(_, c)| *c > 0.0).map(|(s, c)| format!("{p} {:.1}", s / c * 1e3)))
            .collect();
        format!("{} ms", parts.join(", "))
    }
}

async fn wait_ready(conn: &mut Conn, signer: &Signer, function: &str) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        let body = conn.call_ok(signer.request(Method::GET, &format!("{FUNCTIONS}/{function}"), Bytes::new())).await?;
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        let info = &v["customContainerConfig"]["accelerationInfo"];
        match info["status"].as_str() {
            Some("Ready") => return Ok(start.elapsed()),
            Some("Preparing") => {}
            _ => bail!("{function}: image not ready: {info}"),
        }
        if start.elapsed() > Duration::from_secs(120) {
            bail!("{function}: still Preparing after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Part 2.
async fn cold_starts(openfc_bin: &Path, images: &Images) -> anyhow::Result<Vec<Row>> {
    let zip = tokio::task::spawn_blocking(bootstrap_zip).await??;
    let openfc = Openfc::start(openfc_bin, &["--insecure-registry", &images.host], None).await?;
    eprintln!("openfc on {} (--insecure-registry {}), data in {}", openfc.addr(), images.host, openfc.dir.path().display());
    let result = async {
        let signer = Arc::new(Signer::from_credentials(&openfc.credentials, openfc.addr())?);
        let mut conn = Conn::open(signer.addr).await?;
        conn.call_ok(signer.request(Method::POST, SERVICES, Bytes::from(r#"{"serviceName":"bench"}"#))).await?;
        let common = serde_json::json!({"caPort": 9000, "memorySize": 128, "timeout": 10, "instanceConcurrency": 1});
        let mut ctr = common.clone();
        ctr.as_object_mut().expect("object").extend(
            serde_json::json!({
                "functionName": "ctr", "runtime": "custom-container", "handler": "not-used",
                "customContainerConfig": {"image": images.server},
            })
            .as_object()
            .expect("object")
            .clone(),
        );
        let mut cust = common;
        cust.as_object_mut().expect("object").extend(
            serde_json::json!({
                "functionName": "cust", "runtime": "custom", "handler": "h",
                "code": {"zipFile": STANDARD.encode(&zip)},
            })
            .as_object()
            .expect("object")
            .clone(),
        );
        conn.call_ok(signer.request(Method::POST, FUNCTIONS, ctr.to_string().into())).await?;
        conn.call_ok(signer.request(Method::POST, FUNCTIONS, cust.to_string().into())).await?;
        let ready = wait_ready(&mut conn, &signer, "ctr").await?;
        eprintln!("image {} Ready {} after CreateFunction", images.server, ms(ready));
        for f in ["ctr", "cust"] {
            let (t, _) = invoke(&mut conn, &signer, f).await?;
            eprintln!("{f}: first invocation (unmeasured) {}", ms(t));
        }
        eprintln!("cold starts: {COLD_RUNS} each, alternating, UpdateFunction before each");
        let (mut c, mut k) = (ColdSamples::default(), ColdSamples::default());
        for i in 0..COLD_RUNS {
            let order = if i % 2 == 0 { ["ctr", "cust"] } else { ["cust", "ctr"] };
            for f in order {
                let update = serde_json::json!({"description": format!("cold start {i}")}).to_string();
                conn.call_ok(signer.request(Method::PUT, &format!("{FUNCTIONS}/{f}"), update.into())).await?;
                tokio::time::sleep(COLD_PAUSE).await;
                let before = cold_metrics(signer.addr).await?;
                let (t, id) = invoke(&mut conn, &signer, f).await?;
                let after = cold_metrics(signer.addr).await?;
                let s = if f == "ctr" { &mut c } else { &mut k };
                s.times.push(t);
                s.instances.insert(id);
                for (phase, (sum, count)) in &after {
                    let (s0, c0) = before.get(phase).copied().unwrap_or_default();
                    let e = s.phases.entry(phase.clone()).or_default();
                    e.0 += sum - s0;
                    e.1 += count - c0;
                }
            }
        }
        c.times.sort_unstable();
        k.times.sort_unstable();
        let (cp, kp) = (percentile(&c.times, 50.0), percentile(&k.times, 50.0));
        let diff_ms = (cp.as_secs_f64() - kp.as_secs_f64()) * 1e3;
        let figure = |s: &ColdSamples| format!("p50 {} (min {}, max {})", ms(percentile(&s.times, 50.0)), ms(s.times[0]), ms(*s.times.last().expect("runs")));
        anyhow::Ok(vec![
            info(format!("custom-container cold invoke (image Ready), {COLD_RUNS} runs"), figure(&c)),
            info(format!("custom runtime cold invoke, same server as /code/bootstrap, {COLD_RUNS} runs"), figure(&k)),
            check("cold start p50(container) − p50(custom)", format!("{diff_ms:+.1} ms"), "≤ +3 ms", diff_ms <= 3.0),
            check("  distinct instances (one new per run): container | custom", format!("{}/{COLD_RUNS} | {}/{COLD_RUNS}", c.instances.len(), k.instances.len()), "all", c.instances.len() == COLD_RUNS && k.instances.len() == COLD_RUNS),
            info("  container phases (mean of openfc_cold_start_seconds)", c.phases_figure()),
            info("  custom phases (mean of openfc_cold_start_seconds)", k.phases_figure()),
        ])
    }
    .await;
    let mut rows = result.map_err(|e| e.context(openfc.log_tail()))?;
    rows.extend(log_rows("openfc (cold starts)", openfc));
    Ok(rows)
}

/// Part 3.
fn shared_disk(openfc: &Path, work: &Path, images: &Images) -> anyhow::Result<Vec<Row>> {
    let a_layers: HashSet<&(String, u64)> = images.shared_a_layers.iter().collect();
    let shared: Vec<&(String, u64)> = images.shared_b_layers.iter().filter(|l| a_layers.contains(l)).collect();
    let shared_bytes: u64 = shared.iter().map(|(_, s)| s).sum();
    let mut measured = Vec::new();
    for (i, refs) in [vec![&images.shared_a], vec![&images.shared_b], vec![&images.shared_a, &images.shared_b]].into_iter().enumerate() {
        let data = work.join(format!("disk-{i}/data"));
        for r in refs {
            eprintln!("disk: openfc images pull {r} into {}", data.display());
            openfc_pull(openfc, &images.host, &data, r)?;
        }
        measured.push((usage(&data.join("images/blobs")), usage(&data.join("images/trees"))));
        std::fs::remove_dir_all(work.join(format!("disk-{i}")))?;
    }
    let (a, b, both) = (measured[0], measured[1], measured[2]);
    let fig = |(blobs, trees): (Usage, Usage)| {
        format!("blobs {} + trees {} = {} (allocated {})", mb(blobs.files), mb(trees.files), mb(blobs.files + trees.files), mb((blobs + trees).allocated))
    };
    let saved = |x: u64, y: u64, z: u64| (x + y).saturating_sub(z);
    let (saved_blobs, saved_trees) = (saved(a.0.files, b.0.files, both.0.files), saved(a.1.files, b.1.files, both.1.files));
    let sum_alone = a.0.files + a.1.files + b.0.files + b.1.files;
    let saved_alloc = saved((a.0 + a.1).allocated, (b.0 + b.1).allocated, (both.0 + both.1).allocated);
    Ok(vec![
        info(
            "shared base layer (busybox + random files), compressed",
            format!("{} ({} layer{} of {} and {})", mb(shared_bytes), shared.len(), if shared.len() == 1 { "" } else { "s" }, images.shared_a_layers.len(), images.shared_b_layers.len()),
        ),
        info("image A alone: openfc store", fig(a)),
        info("image B alone: openfc store", fig(b)),
        info("A and B in one store", fig(both)),
        info(
            "saved by the shared layer = A alone + B alone − both",
            format!(
                "blobs {}, trees {}; total {} of {} ({:.0}%; allocated {})",
                mb(saved_blobs),
                mb(saved_trees),
                mb(saved_blobs + saved_trees),
                mb(sum_alone),
                (saved_blobs + saved_trees) as f64 * 100.0 / sum_alone.max(1) as f64,
                mb(saved_alloc)
            ),
        ),
    ])
}
