//! Code packages: CreateFunction time and the server's peak extra memory per call, and download
//! throughput of a package's GetFunctionCode URL.

use std::io::{Cursor, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Method;
use rand::RngCore;
use zip::write::SimpleFileOptions;

use crate::client::{Conn, Signer, plain_get};
use crate::procs::{reset_peak, status_bytes};

pub const FUNCTIONS: &str = "/2016-08-15/services/bench/functions";

/// A zip holding one stored entry of `size` random (incompressible) bytes.
pub fn random_zip(size: usize) -> anyhow::Result<Vec<u8>> {
    let mut data = vec![0u8; size];
    rand::rng().fill_bytes(&mut data);
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::with_capacity(size + 1024)));
    zip.start_file("data.bin", SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored))?;
    zip.write_all(&data)?;
    Ok(zip.finish()?.into_inner())
}

/// A CreateFunction request body for `zip`.
pub fn create_body(name: &str, zip: &[u8]) -> Bytes {
    let code = STANDARD.encode(zip);
    format!(r#"{{"functionName":"{name}","runtime":"custom","handler":"main","code":{{"zipFile":"{code}"}}}}"#).into()
}

pub struct CreateResult {
    pub zip_bytes: usize,
    pub median: Duration,
    /// Largest `VmHWM - VmRSS before the call` over the calls.
    pub peak_extra: u64,
}

/// `runs` CreateFunction calls, each a fresh function with fresh random content of `size` bytes.
pub async fn create_functions(
    signer: &Signer,
    pid: u32,
    prefix: &str,
    size: usize,
    runs: usize,
) -> anyhow::Result<CreateResult> {
    let mut conn = Conn::open(signer.addr).await?;
    let (mut times, mut peak_extra, mut zip_bytes) = (Vec::new(), 0, 0);
    for i in 0..runs {
        let zip = random_zip(size)?;
        zip_bytes = zip.len();
        let req = signer.request(Method::POST, FUNCTIONS, create_body(&format!("{prefix}{i}"), &zip));
        reset_peak(pid)?;
        let before = status_bytes(pid, "VmRSS:")?;
        let start = Instant::now();
        conn.call_ok(req).await?;
        times.push(start.elapsed());
        peak_extra = peak_extra.max(status_bytes(pid, "VmHWM:")?.saturating_sub(before));
    }
    times.sort();
    Ok(CreateResult { zip_bytes, median: times[times.len() / 2], peak_extra })
}

pub struct DownloadResult {
    /// Throughput of each run, bytes per second, sorted.
    pub rates: Vec<f64>,
    /// Runs whose byte count equalled Content-Length.
    pub complete: usize,
}

/// Downloads `function`'s package `runs` times over one keep-alive connection, discarding the bytes.
pub async fn download(signer: &Signer, function: &str, runs: usize) -> anyhow::Result<DownloadResult> {
    let mut api = Conn::open(signer.addr).await?;
    let answer = api.call_ok(signer.request(Method::GET, &format!("{FUNCTIONS}/{function}/code"), Bytes::new())).await?;
    let answer: serde_json::Value = serde_json::from_slice(&answer)?;
    let url = answer["url"].as_str().context("GetFunctionCode answered no url")?;
    let rest = url.strip_prefix("http://").context("code url is not http://")?;
    let (host, path) = rest.split_at(rest.find('/').context("code url has no path")?);
    let addr: SocketAddr = host.parse().context("code url host is not IP:PORT")?;

    let mut conn = Conn::open(addr).await?;
    let (mut rates, mut complete) = (Vec::new(), 0);
    for _ in 0..runs {
        let start = Instant::now();
        let resp = conn.send(plain_get(addr, path)).await?;
        if !resp.status().is_success() {
            bail!("code download: HTTP {}", resp.status());
        }
        let length: Option<u64> =
            resp.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let mut body = resp.into_body();
        let mut received = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                received += data.len() as u64;
            }
        }
        rates.push(received as f64 / start.elapsed().as_secs_f64());
        complete += usize::from(length == Some(received));
    }
    rates.sort_by(f64::total_cmp);
    Ok(DownloadResult { rates, complete })
}
