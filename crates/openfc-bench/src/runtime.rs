//! The trivial custom runtime: this very binary, shipped in a function's zip as `bootstrap` (it runs as
//! the runtime whenever argv[0] ends with `bootstrap`, or with the `runtime-server` argument on the host
//! as the baseline). A hyper HTTP/1.1 server on `0.0.0.0:$FC_CUSTOM_LISTEN_PORT` (TCP_NODELAY) that
//! answers every request, `POST /invoke` included, 200 with the request body; a body `work:N` first
//! runs N steps of arithmetic (a function that does some work).
//!
//! For the `async` part the runtime also keeps evidence of what it ran, in memory (a function instance
//! cannot reach the host, and scraping logs would be slow and lossy): when its environment sets
//! `BENCH_RECORD=1`, every request is counted and recorded as (its `x-fc-request-id`, the wall-clock time
//! it arrived in µs since the Unix epoch, and its body when that is a timer event). Control requests,
//! sent as synchronous invocations whose body starts with `bench:`, are neither counted nor recorded:
//! `bench:count` answers `{"served": N}`, `bench:drain` answers and forgets up to `DRAIN_PAGE` records,
//! `{"records": [[id, start_us, timer_body_or_null], ...], "left": N}`.

use std::convert::Infallible;
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// Records forgotten per `bench:drain` answer.
pub const DRAIN_PAGE: usize = 5000;

/// What a `BENCH_RECORD=1` runtime ran.
struct Recorder {
    on: bool,
    served: AtomicU64,
    records: Mutex<VecDeque<(String, i64, Option<String>)>>,
}

static RECORDER: LazyLock<Recorder> = LazyLock::new(|| Recorder {
    on: std::env::var("BENCH_RECORD").is_ok_and(|v| v == "1"),
    served: AtomicU64::new(0),
    records: Mutex::new(VecDeque::new()),
});

/// Microseconds since the Unix epoch, by the wall clock (the same clock on the host and in an instance).
pub fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// Whether this process was started as a custom runtime's `bootstrap`.
pub fn is_bootstrap() -> bool {
    std::env::args_os().next().is_some_and(|a| a.to_string_lossy().ends_with("bootstrap"))
}

/// Serves until killed.
pub fn serve_from_env() -> anyhow::Result<()> {
    let port: u16 = match std::env::var("FC_CUSTOM_LISTEN_PORT") {
        Ok(p) => p.parse().map_err(|_| anyhow::anyhow!("FC_CUSTOM_LISTEN_PORT={p:?} is not a port"))?,
        Err(_) => 9000,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(serve(port))
}

async fn serve(port: u16) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).await?;
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(_) => {
                // Out of descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new().serve_connection(TokioIo::new(tcp), service_fn(echo)).await;
        });
    }
}

async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let start_us = now_us();
    let recorder = &*RECORDER;
    let request_id = match recorder.on {
        true => req.headers().get("x-fc-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned(),
        false => String::new(),
    };
    Ok(match req.into_body().collect().await {
        Ok(body) => {
            let body = body.to_bytes();
            if let Some(command) = body.strip_prefix(b"bench:") {
                return Ok(Response::new(Full::new(control(command))));
            }
            if recorder.on {
                let timer = (body.len() < 1024 && body.windows(13).any(|w| w == b"\"triggerTime\""))
                    .then(|| String::from_utf8_lossy(&body).into_owned());
                recorder.records.lock().unwrap_or_else(|e| e.into_inner()).push_back((request_id, start_us, timer));
                recorder.served.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(n) = body.strip_prefix(b"work:").and_then(|n| std::str::from_utf8(n).ok()?.parse::<u64>().ok()) {
                // A fixed amount of computation (not of wall time, which preemption would shorten).
                let mut x = 0u64;
                for i in 0..n {
                    x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
                }
                std::hint::black_box(x);
            }
            Response::new(Full::new(body))
        }
        Err(_) => {
            let mut resp = Response::new(Full::new(Bytes::from_static(b"unreadable request body")));
            *resp.status_mut() = StatusCode::BAD_REQUEST;
            resp
        }
    })
}

/// Answers a `bench:` control request.
fn control(command: &[u8]) -> Bytes {
    let recorder = &*RECORDER;
    match command {
        b"count" => serde_json::json!({"served": recorder.served.load(Ordering::Relaxed)}).to_string().into(),
        b"drain" => {
            let mut records = recorder.records.lock().unwrap_or_else(|e| e.into_inner());
            let n = records.len().min(DRAIN_PAGE);
            let page: Vec<_> = records.drain(..n).collect();
            serde_json::json!({"records": page, "left": records.len()}).to_string().into()
        }
        other => format!("unknown control request bench:{}", String::from_utf8_lossy(other)).into(),
    }
}
