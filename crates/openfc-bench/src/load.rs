//! Closed-loop load: W workers, each with its own keep-alive connection, sign and send one request
//! after another. Requests started during the warm-up are not recorded; every latency after it is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Method;

use crate::client::{Conn, Signer};
use crate::procs::cpu_time;

/// What one scenario measured.
pub struct LoadResult {
    pub per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// Server CPU time per recorded request.
    pub server_cpu: Duration,
    /// Load generator CPU time per recorded request.
    pub client_cpu: Duration,
    pub errors: usize,
    pub first_error: Option<String>,
}

struct WorkerOut {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
}

pub async fn run(
    signer: Arc<Signer>,
    path: &str,
    workers: usize,
    server_pid: u32,
    warm_up: Duration,
    measure: Duration,
) -> anyhow::Result<LoadResult> {
    let warm_end = Instant::now() + warm_up;
    let end = warm_end + measure;
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (signer, path) = (signer.clone(), path.to_owned());
        handles.push(tokio::spawn(worker(signer, path, warm_end, end)));
    }
    tokio::time::sleep_until(warm_end.into()).await;
    let (server0, client0) = (cpu_time(server_pid), cpu_time(std::process::id()));
    tokio::time::sleep_until(end.into()).await;
    let (server1, client1) = (cpu_time(server_pid), cpu_time(std::process::id()));

    let (mut latencies, mut errors, mut first_error) = (Vec::new(), 0, None);
    for h in handles {
        let out = h.await??;
        latencies.extend(out.latencies);
        errors += out.errors;
        first_error = first_error.or(out.first_error);
    }
    latencies.sort_unstable();
    let n = latencies.len().max(1);
    let pct = |p: usize| latencies.get((n * p / 100).min(n - 1)).copied().unwrap_or_default();
    Ok(LoadResult {
        per_sec: latencies.len() as f64 / measure.as_secs_f64(),
        p50: pct(50),
        p99: pct(99),
        server_cpu: (server1 - server0) / n as u32,
        client_cpu: (client1 - client0) / n as u32,
        errors,
        first_error,
    })
}

async fn worker(signer: Arc<Signer>, path: String, warm_end: Instant, end: Instant) -> anyhow::Result<WorkerOut> {
    let mut conn = Conn::open(signer.addr).await?;
    let mut out = WorkerOut { latencies: Vec::with_capacity(1 << 16), errors: 0, first_error: None };
    loop {
        let start = Instant::now();
        if start >= end {
            return Ok(out);
        }
        let req = signer.request(Method::GET, &path, Default::default());
        let result = conn.call(req).await;
        let elapsed = start.elapsed();
        let error = match result {
            Ok((status, _)) if (200..300).contains(&status) => None,
            Ok((status, body)) => Some(format!("HTTP {status}: {}", String::from_utf8_lossy(&body))),
            Err(e) => {
                conn = Conn::open(signer.addr).await?;
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
