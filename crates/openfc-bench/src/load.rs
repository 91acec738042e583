//! Closed-loop load: W workers, each with its own keep-alive connection, sign and send one request
//! after another. Requests started during the warm-up are not recorded; every latency after it is.
//! A response is an error when it is not 2xx or carries `x-fc-error-type` (a function failure).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};

use crate::client::{Conn, Signer};
use crate::procs::{cpu_time, tree_cpu_time};

/// What every worker sends, signed afresh each time.
pub struct Call {
    pub signer: Arc<Signer>,
    pub method: Method,
    pub path: String,
    pub body: Bytes,
}

impl Call {
    pub fn get(signer: &Arc<Signer>, path: &str) -> Arc<Self> {
        Arc::new(Self { signer: signer.clone(), method: Method::GET, path: path.to_owned(), body: Bytes::new() })
    }

    pub fn post(signer: &Arc<Signer>, path: &str, body: &'static [u8]) -> Arc<Self> {
        Arc::new(Self { signer: signer.clone(), method: Method::POST, path: path.to_owned(), body: Bytes::from_static(body) })
    }

    pub fn request(&self) -> Request<Full<Bytes>> {
        self.signer.request(self.method.clone(), &self.path, self.body.clone())
    }
}

/// What one scenario measured.
pub struct LoadResult {
    pub per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// CPU time per recorded request of the server and all its descendants (function instances).
    pub server_cpu: Duration,
    /// Load generator CPU time per recorded request.
    pub client_cpu: Duration,
    pub errors: usize,
    pub first_error: Option<String>,
    /// Distinct `x-fc-instance-id` values seen after the warm-up (0 for servers that send none).
    pub instances: usize,
}

struct WorkerOut {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
    instances: HashSet<String>,
}

pub async fn run(call: Arc<Call>, workers: usize, server_pid: u32, warm_up: Duration, measure: Duration) -> anyhow::Result<LoadResult> {
    let warm_end = Instant::now() + warm_up;
    let end = warm_end + measure;
    let mut handles = Vec::new();
    for _ in 0..workers {
        handles.push(tokio::spawn(worker(call.clone(), warm_end, end)));
    }
    tokio::time::sleep_until(warm_end.into()).await;
    let (server0, client0) = (tree_cpu_time(server_pid), cpu_time(std::process::id()));
    tokio::time::sleep_until(end.into()).await;
    let (server1, client1) = (tree_cpu_time(server_pid), cpu_time(std::process::id()));

    let (mut latencies, mut errors, mut first_error, mut instances) = (Vec::new(), 0, None, HashSet::new());
    for h in handles {
        let out = h.await??;
        latencies.extend(out.latencies);
        errors += out.errors;
        first_error = first_error.or(out.first_error);
        instances.extend(out.instances);
    }
    latencies.sort_unstable();
    let n = latencies.len().max(1);
    Ok(LoadResult {
        per_sec: latencies.len() as f64 / measure.as_secs_f64(),
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        server_cpu: server1.saturating_sub(server0) / n as u32,
        client_cpu: client1.saturating_sub(client0) / n as u32,
        errors,
        first_error,
        instances: instances.len(),
    })
}

/// The `p`th percentile of sorted durations (zero when empty).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p / 100.0) as usize).min(sorted.len() - 1);
    sorted[i]
}

async fn worker(call: Arc<Call>, warm_end: Instant, end: Instant) -> anyhow::Result<WorkerOut> {
    let addr = call.signer.addr;
    let mut conn = Conn::open(addr).await?;
    let mut out = WorkerOut { latencies: Vec::with_capacity(1 << 16), errors: 0, first_error: None, instances: HashSet::new() };
    loop {
        let start = Instant::now();
        if start >= end {
            return Ok(out);
        }
        let result = conn.call_full(call.request()).await;
        let elapsed = start.elapsed();
        let error = match result {
            Ok((status, headers, body)) if (200..300).contains(&status) => match headers.get("x-fc-error-type") {
                Some(t) => Some(format!("function error {t:?}: {}", String::from_utf8_lossy(&body))),
                None => {
                    if start >= warm_end
                        && let Some(id) = headers.get("x-fc-instance-id").and_then(|v| v.to_str().ok())
                        && !out.instances.contains(id)
                    {
                        out.instances.insert(id.to_owned());
                    }
                    None
                }
            },
            Ok((status, _, body)) => Some(format!("HTTP {status}: {}", String::from_utf8_lossy(&body))),
            Err(e) => {
                conn = Conn::open(addr).await?;
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
}
