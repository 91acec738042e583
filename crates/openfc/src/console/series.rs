//! The console's charts: a bounded in-memory time series of this node's activity — invocations and errors per
//! function, cold-start phases, instance counts, async queue depth — one bucket per 10 s for the last hour.
//!
//! It is fed by a tap on the process's metrics recorder ([`Tap`]): the invoker, the async workers and the
//! instance sampler already report these as `metrics` counters, histograms and gauges, so the tap sees every
//! one without a second call on the invoke path. Per function it keeps a fixed ring (a few KiB), for at most
//! [`MAX_FUNCTIONS`] functions: memory does not grow with traffic or time. Each node keeps its own; the
//! console says so.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

/// Seconds per bucket.
pub const BUCKET_SECS: i64 = 10;
/// Buckets kept: one hour.
pub const BUCKETS: usize = 360;
/// Functions tracked at most; later ones are not charted (their metrics still reach `/metrics`).
pub const MAX_FUNCTIONS: usize = 500;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The current bucket: Unix seconds / [`BUCKET_SECS`].
pub fn bucket_now() -> i64 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    secs.div_euclid(BUCKET_SECS)
}

/// A fixed ring of buckets; a slot holding an older bucket is reset when its bucket comes round again.
struct Ring<T> {
    slots: Box<[(i64, T)]>,
}

impl<T: Default + Clone> Ring<T> {
    fn new() -> Self {
        Ring { slots: vec![(i64::MIN, T::default()); BUCKETS].into_boxed_slice() }
    }

    fn at(&mut self, bucket: i64) -> &mut T {
        let slot = &mut self.slots[bucket.rem_euclid(BUCKETS as i64) as usize];
        if slot.0 != bucket {
            *slot = (bucket, T::default());
        }
        &mut slot.1
    }

    /// The buckets of the last hour up to `now`, oldest first, with their start time (Unix seconds).
    fn points(&self, now: i64) -> Vec<(i64, T)> {
        let mut out: Vec<(i64, T)> = self
            .slots
            .iter()
            .filter(|(b, _)| *b <= now && *b > now - BUCKETS as i64)
            .map(|(b, v)| (b * BUCKET_SECS, v.clone()))
            .collect();
        out.sort_by_key(|(t, _)| *t);
        out
    }
}

#[derive(Default, Clone, Copy)]
struct Calls {
    invocations: u64,
    errors: u64,
}

#[derive(Default, Clone, Copy)]
struct Timing {
    count: u64,
    seconds: f64,
}

#[derive(Default, Clone, Copy)]
struct Instances {
    alive: Option<f64>,
    busy: Option<f64>,
}

/// Who a function's series belongs to: the account when the metric names it, else empty (see `console::charts`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct FunctionKey {
    pub account: String,
    pub service: String,
    pub function: String,
}

#[derive(Default)]
pub struct Series {
    functions: Mutex<HashMap<FunctionKey, Arc<Mutex<Ring<Calls>>>>>,
    cold_start: Mutex<Vec<(String, Ring<Timing>)>>,
    instances: Mutex<Option<Ring<Instances>>>,
    queue_depth: Mutex<Option<Ring<Option<f64>>>>,
}

/// The process's series (the metrics recorder is process-wide too).
pub static SERIES: LazyLock<Series> = LazyLock::new(Series::default);

/// A cold-start phase's bucket: (start, cold starts, mean milliseconds).
pub type PhasePoint = (i64, u64, f64);

/// One function's points: (start, invocations, errors), buckets without calls left out.
pub struct FunctionPoints {
    pub key: FunctionKey,
    pub points: Vec<(i64, u64, u64)>,
}

impl Series {
    fn function(&self, key: FunctionKey) -> Option<Arc<Mutex<Ring<Calls>>>> {
        let mut map = lock(&self.functions);
        if let Some(ring) = map.get(&key) {
            return Some(ring.clone());
        }
        if map.len() >= MAX_FUNCTIONS {
            // Room is made by functions nothing counts for any more (no live handle: their pools are gone)
            // and with nothing left to show (no call within the hour); else the newcomer is not charted.
            let now = bucket_now();
            map.retain(|_, ring| {
                Arc::strong_count(ring) > 1 || !lock(ring).points(now).iter().all(|(_, c)| c.invocations == 0)
            });
            if map.len() >= MAX_FUNCTIONS {
                return None;
            }
        }
        Some(map.entry(key).or_insert_with(|| Arc::new(Mutex::new(Ring::new()))).clone())
    }

    fn cold_start(&self, phase: &str, seconds: f64) {
        let mut phases = lock(&self.cold_start);
        let i = match phases.iter().position(|(p, _)| p == phase) {
            Some(i) => i,
            None => {
                phases.push((phase.to_owned(), Ring::new()));
                phases.len() - 1
            }
        };
        let t = phases[i].1.at(bucket_now());
        t.count += 1;
        t.seconds += seconds;
    }

    fn instances(&self, state: &str, value: f64) {
        let mut ring = lock(&self.instances);
        let slot = ring.get_or_insert_with(Ring::new).at(bucket_now());
        match state {
            "alive" => slot.alive = Some(value),
            "busy" => slot.busy = Some(value),
            _ => {}
        }
    }

    fn queue_depth(&self, value: f64) {
        *lock(&self.queue_depth).get_or_insert_with(Ring::new).at(bucket_now()) = Some(value);
    }

    /// Every function's points for the hour up to now.
    pub fn functions(&self, now: i64) -> Vec<FunctionPoints> {
        let rings: Vec<_> = lock(&self.functions).iter().map(|(k, r)| (k.clone(), r.clone())).collect();
        rings
            .into_iter()
            .map(|(key, ring)| {
                let points = lock(&ring)
                    .points(now)
                    .into_iter()
                    .filter(|(_, c)| c.invocations > 0 || c.errors > 0)
                    .map(|(t, c)| (t, c.invocations, c.errors))
                    .collect();
                FunctionPoints { key, points }
            })
            .collect()
    }

    /// Per cold-start phase: (start, cold starts, mean milliseconds).
    pub fn cold_starts(&self, now: i64) -> Vec<(String, Vec<PhasePoint>)> {
        lock(&self.cold_start)
            .iter()
            .map(|(phase, ring)| {
                let points = ring
                    .points(now)
                    .into_iter()
                    .filter(|(_, t)| t.count > 0)
                    .map(|(b, t)| (b, t.count, t.seconds * 1000.0 / t.count as f64))
                    .collect();
                (phase.clone(), points)
            })
            .collect()
    }

    /// (start, alive, busy): the last sample of each bucket.
    pub fn instance_counts(&self, now: i64) -> Vec<(i64, f64, f64)> {
        lock(&self.instances).as_ref().map_or_else(Vec::new, |ring| {
            ring.points(now).into_iter().filter_map(|(t, i)| i.alive.map(|a| (t, a, i.busy.unwrap_or(0.0)))).collect()
        })
    }

    /// (start, events due): the last sample of each bucket.
    pub fn queue_depths(&self, now: i64) -> Vec<(i64, f64)> {
        lock(&self.queue_depth)
            .as_ref()
            .map_or_else(Vec::new, |ring| ring.points(now).into_iter().filter_map(|(t, d)| d.map(|d| (t, d))).collect())
    }
}

fn label<'k>(key: &'k Key, name: &str) -> Option<&'k str> {
    key.labels().find(|l| l.key() == name).map(|l| l.value())
}

/// A function's invocation counter: counts go to the recorder and to the function's ring.
struct CallCounter {
    inner: Counter,
    ring: Arc<Mutex<Ring<Calls>>>,
    error: bool,
}

impl CounterFn for CallCounter {
    fn increment(&self, value: u64) {
        self.inner.increment(value);
        let mut ring = lock(&self.ring);
        let calls = ring.at(bucket_now());
        calls.invocations += value;
        if self.error {
            calls.errors += value;
        }
    }

    fn absolute(&self, value: u64) {
        self.inner.absolute(value);
    }
}

/// A cold-start phase's histogram.
struct PhaseHistogram {
    inner: Histogram,
    phase: String,
}

impl HistogramFn for PhaseHistogram {
    fn record(&self, value: f64) {
        self.inner.record(value);
        SERIES.cold_start(&self.phase, value);
    }
}

/// A sampled gauge (instances by state, async queue depth).
struct SampledGauge {
    inner: Gauge,
    feed: fn(&str, f64),
    state: String,
}

impl GaugeFn for SampledGauge {
    fn increment(&self, value: f64) {
        self.inner.increment(value);
    }

    fn decrement(&self, value: f64) {
        self.inner.decrement(value);
    }

    fn set(&self, value: f64) {
        self.inner.set(value);
        (self.feed)(&self.state, value);
    }
}

/// The process's recorder, wrapped: every metric reaches it unchanged, and the few the console charts are
/// also fed to [`SERIES`].
pub struct Tap<R>(pub R);

impl<R: Recorder> Recorder for Tap<R> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_counter(key, unit, description)
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_gauge(key, unit, description)
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_histogram(key, unit, description)
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        let inner = self.0.register_counter(key, metadata);
        if key.name() != "openfc_invocations_total" {
            return inner;
        }
        let (Some(service), Some(function)) = (label(key, "service"), label(key, "function")) else { return inner };
        let fkey = FunctionKey {
            account: label(key, "account").unwrap_or("").to_owned(),
            service: service.to_owned(),
            function: function.to_owned(),
        };
        match SERIES.function(fkey) {
            Some(ring) => {
                let error = label(key, "outcome").is_some_and(|o| o != "success");
                Counter::from_arc(Arc::new(CallCounter { inner, ring, error }))
            }
            None => inner,
        }
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        let inner = self.0.register_gauge(key, metadata);
        let (feed, state): (fn(&str, f64), &str) = match key.name() {
            "openfc_instances" => (|s, v| SERIES.instances(s, v), label(key, "state").unwrap_or("")),
            "openfc_async_queue_depth" => (|_, v| SERIES.queue_depth(v), ""),
            _ => return inner,
        };
        Gauge::from_arc(Arc::new(SampledGauge { inner, feed, state: state.to_owned() }))
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        let inner = self.0.register_histogram(key, metadata);
        match (key.name(), label(key, "phase")) {
            ("openfc_cold_start_seconds", Some(phase)) => {
                Histogram::from_arc(Arc::new(PhaseHistogram { inner, phase: phase.to_owned() }))
            }
            _ => inner,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_one_hour_and_resets_reused_slots() {
        let mut ring: Ring<Calls> = Ring::new();
        ring.at(1000).invocations += 2;
        ring.at(1000).errors += 1;
        ring.at(1001).invocations += 1;
        let points = ring.points(1001);
        assert_eq!(points.len(), 2);
        assert_eq!((points[0].0, points[0].1.invocations, points[0].1.errors), (10_000, 2, 1));
        // The same slot an hour later starts from zero, and the old bucket is out of the window.
        ring.at(1000 + BUCKETS as i64).invocations += 5;
        let points = ring.points(1000 + BUCKETS as i64);
        assert_eq!(points.iter().map(|(_, c)| c.invocations).collect::<Vec<_>>(), vec![1, 5]);
        assert!(ring.points(999).is_empty(), "the future is not shown");
    }

    #[test]
    fn a_full_table_makes_room_from_functions_nobody_counts_any_more() {
        let series = Series::default();
        let key = |i: usize| FunctionKey { account: String::new(), service: "s".into(), function: format!("f{i}") };
        let mut held: Vec<_> = (0..MAX_FUNCTIONS).map(|i| series.function(key(i)).expect("room")).collect();
        assert!(series.function(key(MAX_FUNCTIONS)).is_none(), "full, and every one is still counted");
        // One function's pool goes away with calls still in the hour: it stays. Another's goes away idle: it leaves.
        lock(&held[0]).at(bucket_now()).invocations += 1;
        held.drain(0..2);
        assert!(series.function(key(MAX_FUNCTIONS)).is_some());
        let names: Vec<_> = lock(&series.functions).keys().map(|k| k.function.clone()).collect();
        assert!(names.contains(&"f0".to_owned()) && !names.contains(&"f1".to_owned()));
    }

    #[test]
    fn the_tap_feeds_the_series_and_the_inner_recorder() {
        let inner = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = inner.handle();
        let tap = Tap(inner);
        metrics::with_local_recorder(&tap, || {
            metrics::counter!("openfc_invocations_total", "service" => "tap-s", "function" => "tap-f", "outcome" => "success").increment(3);
            metrics::counter!("openfc_invocations_total", "service" => "tap-s", "function" => "tap-f", "outcome" => "unhandled_error").increment(1);
            metrics::histogram!("openfc_cold_start_seconds", "phase" => "tap-phase").record(0.25);
            metrics::gauge!("openfc_instances", "state" => "alive").set(4.0);
            metrics::gauge!("openfc_instances", "state" => "busy").set(1.0);
            metrics::gauge!("openfc_async_queue_depth").set(7.0);
        });
        let now = bucket_now();
        let f = SERIES.functions(now).into_iter().find(|f| f.key.service == "tap-s").expect("series");
        let (inv, err) = f.points.iter().fold((0, 0), |(a, b), p| (a + p.1, b + p.2));
        assert_eq!((inv, err), (4, 1));
        let cold = SERIES.cold_starts(now).into_iter().find(|(p, _)| p == "tap-phase").expect("phase");
        assert_eq!(cold.1.last().map(|p| (p.1, p.2)), Some((1, 250.0)));
        assert_eq!(SERIES.instance_counts(now).last().map(|p| (p.1, p.2)), Some((4.0, 1.0)));
        assert_eq!(SERIES.queue_depths(now).last().map(|p| p.1), Some(7.0));
        assert!(handle.render().contains("tap-f"), "the inner recorder got it too");
    }
}
