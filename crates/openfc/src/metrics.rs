//! Prometheus metrics, rendered on our own `/metrics` route.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const LATENCY_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How often histogram samples are folded into their buckets when nobody renders `/metrics` (the recorder
/// keeps every sample until then).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once and returns its handle.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("openfc_request_duration_seconds".into()), LATENCY_BUCKETS)
                .expect("buckets are non-empty")
                .build_recorder();
            let handle = recorder.handle();
            // A second recorder (tests starting several servers in one process) keeps the first. The console's
            // time series taps the few metrics it charts on their way to it.
            let _ = metrics::set_global_recorder(crate::console::series::Tap(recorder));
            // `build_recorder` leaves the upkeep to us: without it every histogram sample of every request
            // stays in memory until the next scrape.
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
            handle
        })
        .clone()
}

/// A request metric's handles: its count and its duration.
type RequestHandles = (Counter, Histogram);

thread_local! {
    /// The request metrics' handles per (operation, status), per thread: registering them anew for every
    /// request (building the label set, hashing it, the registry lookup) cost more than recording.
    static REQUEST_METRICS: RefCell<HashMap<(&'static str, u16), RequestHandles>> = RefCell::new(HashMap::new());
}

pub fn record_request(operation: &'static str, status: u16, seconds: f64) {
    if HANDLE.get().is_none() {
        // No recorder of ours yet: handles taken now would record nowhere for good.
        metrics::counter!("openfc_requests_total", "operation" => operation, "status" => status.to_string()).increment(1);
        metrics::histogram!("openfc_request_duration_seconds", "operation" => operation).record(seconds);
        return;
    }
    REQUEST_METRICS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let (count, duration) = cache.entry((operation, status)).or_insert_with(|| {
            (
                metrics::counter!("openfc_requests_total", "operation" => operation, "status" => status.to_string()),
                metrics::histogram!("openfc_request_duration_seconds", "operation" => operation),
            )
        });
        count.increment(1);
        duration.record(seconds);
    });
}

pub fn record_gc(deleted: usize) {
    metrics::counter!("openfc_gc_packages_deleted_total").increment(deleted as u64);
}
