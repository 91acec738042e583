//! Prometheus metrics, rendered on our own `/metrics` route.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const LATENCY_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Installs the process-wide recorder once and returns its handle.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("openfc_request_duration_seconds".into()), LATENCY_BUCKETS)
                .expect("buckets are non-empty")
                .build_recorder();
            let handle = recorder.handle();
            // A second recorder (tests starting several servers in one process) keeps the first.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

pub fn record_request(operation: &'static str, status: u16, seconds: f64) {
    metrics::counter!("openfc_requests_total", "operation" => operation, "status" => status.to_string()).increment(1);
    metrics::histogram!("openfc_request_duration_seconds", "operation" => operation).record(seconds);
}

pub fn record_gc(deleted: usize) {
    metrics::counter!("openfc_gc_packages_deleted_total").increment(deleted as u64);
}
