//! Timer triggers fire. Every node runs the same scheduler: it reads the enabled timer triggers, and when
//! one is due it moves the trigger's next fire time forward and enqueues FC's timer event in one
//! transaction (`AsyncQueue::advance_timer`), conditional on the time it read — so each tick fires once,
//! whichever node gets there first, across restarts. Ticks missed while openfc was down are not replayed:
//! the first pass after a gap fires once (the catch-up) and schedules the next tick after now.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use serde_json::json;

use crate::asyncq::{AsyncEvent, now_ms};
use crate::usecase::Fc;

/// A parsed `cronExpression`.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// `@every 5m`: a fixed interval.
    Every(Duration),
    /// Six-field cron (seconds first) in a fixed-offset zone (`CRON_TZ=`, UTC by default).
    Cron(Box<croner::Cron>, FixedOffset),
}

/// Zones `CRON_TZ=` may name. Without a time-zone database, only zones without daylight saving are known;
/// others are refused when the schedule is read (and logged), never silently run in another zone.
const ZONES: &[(&str, i32)] = &[
    ("UTC", 0), ("Etc/UTC", 0), ("GMT", 0), ("Etc/GMT", 0), ("Asia/Shanghai", 8), ("Asia/Chongqing", 8),
    ("Asia/Hong_Kong", 8), ("Asia/Taipei", 8), ("Asia/Singapore", 8), ("Asia/Kuala_Lumpur", 8),
    ("Asia/Manila", 8), ("Asia/Tokyo", 9), ("Asia/Seoul", 9), ("Asia/Jakarta", 7), ("Asia/Bangkok", 7),
    ("Asia/Kolkata", 5 * 60 + 30), ("Asia/Dubai", 4), ("Asia/Riyadh", 3), ("Europe/Moscow", 3),
];

/// Whether `CRON_TZ=` may name this zone (checked when a timer trigger is created or updated).
pub fn zone_supported(name: &str) -> bool {
    zone(name).is_some()
}

fn zone(name: &str) -> Option<FixedOffset> {
    if let Some((_, off)) = ZONES.iter().find(|(z, _)| *z == name) {
        // Entries under 24 are hours, the rest minutes.
        let secs = if off.abs() < 24 { off * 3600 } else { off * 60 };
        return FixedOffset::east_opt(secs);
    }
    // Etc/GMT+8 is UTC-8 (POSIX sign). The zone database has Etc/GMT-14 to Etc/GMT+12; a larger number is no
    // zone (and `Etc/GMT+88888888` overflowed the seconds: found by the cron fuzz target).
    let n: i32 = name.strip_prefix("Etc/GMT")?.parse().ok()?;
    if !(-14..=12).contains(&n) {
        return None;
    }
    FixedOffset::west_opt(n * 3600)
}

/// Parses FC's `cronExpression` (validated at create time by `triggers::validate_cron`).
pub fn parse_schedule(expr: &str, min_every: Duration) -> Result<Schedule, String> {
    let mut expr = expr.trim();
    let mut offset = FixedOffset::east_opt(0).expect("UTC");
    if let Some(rest) = expr.strip_prefix("CRON_TZ=") {
        let (z, cron) = rest.split_once(' ').ok_or("CRON_TZ= without a schedule")?;
        offset = zone(z).ok_or_else(|| format!("time zone '{z}' is not supported (zones without daylight saving and Etc/GMT±N are)"))?;
        expr = cron.trim();
    }
    if let Some(spec) = expr.strip_prefix("@every ") {
        let d = every_duration(spec).ok_or_else(|| format!("'@every {spec}' is not a duration"))?;
        if d < min_every {
            return Err(format!("'@every {spec}' is shorter than the minimum interval ({} s)", min_every.as_secs()));
        }
        return Ok(Schedule::Every(d));
    }
    let parser = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .year(croner::parser::Year::Disallowed)
        .sloppy_ranges(true)
        .build();
    let cron = parser.parse(expr).map_err(|e| e.to_string())?;
    Ok(Schedule::Cron(Box::new(cron), offset))
}

/// `1h30m`, `90s`: Go-style durations.
pub fn every_duration(spec: &str) -> Option<Duration> {
    let (mut total, mut num, mut unit_seen) = (0u64, String::new(), false);
    for c in spec.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        total = total.checked_add(n.checked_mul(match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        })?)?;
        unit_seen = true;
    }
    (num.is_empty() && unit_seen && total > 0).then(|| Duration::from_secs(total))
}

impl Schedule {
    /// The first tick strictly after `after_ms`.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match self {
            // None past the end of representable time (an `@every` of millions of hours never fires).
            Schedule::Every(d) => i64::try_from(d.as_millis()).ok().and_then(|ms| after_ms.checked_add(ms)),
            Schedule::Cron(cron, offset) => {
                let from: DateTime<FixedOffset> = offset.timestamp_millis_opt(after_ms).single()?;
                cron.find_next_occurrence(&from, false).ok().map(|t| t.timestamp_millis())
            }
        }
    }
}

fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms).single().map_or_else(String::new, |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

impl Fc {
    /// Runs this node's timer scheduler for `account` until the process ends.
    pub async fn run_timers(self: Arc<Self>) {
        let Some(events) = self.events.clone() else { return };
        loop {
            // Sleep until the earliest next tick this pass saw (at most a second, so new and changed
            // triggers — and accounts — are picked up; at least 10 ms, so a failing store is not hammered).
            let mut earliest = i64::MAX;
            let accounts = match self.meta.list_accounts().await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "reading accounts failed");
                    Vec::new()
                }
            };
            for account in accounts.iter().map(|a| a.id.as_str()) {
                match self.timer_triggers(account).await {
                    Ok(triggers) => {
                        for t in triggers {
                            match self.tick_timer(&events, account, &t).await {
                                Ok(Some(next)) => earliest = earliest.min(next),
                                Ok(None) => {}
                                Err(e) => tracing::warn!(trigger = %t.key, error = %e, "a timer trigger could not fire"),
                            }
                        }
                    }
                    Err(e) => tracing::warn!(account, error = %e, "reading timer triggers failed"),
                }
            }
            let wait = (earliest.saturating_sub(now_ms(self.clock.as_ref()))).clamp(10, 1000);
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
    }

    /// One look at one timer: fires it if due. Returns when it fires next.
    async fn tick_timer(&self, events: &crate::asyncq::Events, account: &str, t: &TimerTrigger) -> Result<Option<i64>, String> {
        let schedule = match parse_schedule(&t.cron, events.settings.min_timer_interval) {
            Ok(s) => s,
            Err(e) => {
                metrics::counter!("openfc_timer_fires_total", "result" => "bad_schedule").increment(1);
                return Err(e);
            }
        };
        let key = format!("{account}/{}", t.key);
        // A changed schedule starts over: the stored time is tagged with the schedule it was computed for.
        let stamp = format!("{}#{}", t.cron, t.modified);
        let now = now_ms(self.clock.as_ref());
        let stored = events.queue.timer_next(&key).await.map_err(|e| e.to_string())?;
        let first = || schedule.next_after(now).ok_or("the schedule has no next time");
        let (expected, next, fire) = match stored {
            Some((next, s)) if s == stamp => {
                if next > now {
                    return Ok(Some(next));
                }
                // From the tick itself, so an interval does not drift by the scheduler's lateness; after a
                // gap (the following tick is already past), from now: no burst of missed ticks.
                let following = match schedule.next_after(next) {
                    Some(f) if f > now => f,
                    _ => schedule.next_after(now).ok_or("the schedule has no next time")?,
                };
                if !t.enabled {
                    (Some((next, s)), following, None)
                } else {
                    (Some((next, s)), following, Some(self.timer_event(account, t, next, now)))
                }
            }
            other => (other, first()?, None),
        };
        let moved = events
            .queue
            .advance_timer(&key, expected.as_ref().map(|(n, _)| *n), next, &stamp, fire.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        if moved && fire.is_some() {
            if let Some((scheduled, _)) = &expected {
                // Lateness against the tick itself (the event's due time is clamped to now).
                let late = (now - scheduled).max(0);
                metrics::histogram!("openfc_timer_fire_delay_seconds").record(late as f64 / 1000.0);
                if late > 1000 {
                    metrics::counter!("openfc_timer_fires_total", "result" => "catch_up").increment(1);
                }
            }
            metrics::counter!("openfc_timer_fires_total", "result" => "fired").increment(1);
            metrics::counter!("openfc_async_events_total", "event" => "enqueued").increment(1);
            events.wake.notify_one();
        }
        Ok(Some(next))
    }

    fn timer_event(&self, account: &str, t: &TimerTrigger, scheduled_ms: i64, now: i64) -> AsyncEvent {
        let body = json!({"triggerTime": rfc3339(scheduled_ms), "triggerName": t.name, "payload": t.payload});
        // One id per tick: a tick enqueued twice (it cannot be, but) would be refused as a duplicate.
        let id = format!("timer-{}-{scheduled_ms}", t.name);
        let mut ev = AsyncEvent::new(account, &t.service, &t.function, &t.qualifier, &id, Bytes::from(body.to_string()), now, "timer");
        ev.due_ms = scheduled_ms.max(now - 1);
        ev
    }

    /// Every timer trigger of the account (a node-local cache would serve many nodes; one read per pass
    /// is cheap next to the 200 ms tick).
    async fn timer_triggers(&self, account: &str) -> Result<Vec<TimerTrigger>, crate::ports::MetaError> {
        let mut out = Vec::new();
        let mut start = String::new();
        loop {
            let page = self.meta.list_docs(account, crate::triggers::KIND, "", &start, 500).await?;
            let n = page.len();
            for doc in &page {
                let t = crate::trigger_config::Trigger::from_doc(doc);
                if let crate::trigger_config::TriggerConfig::Timer { cron, enabled, payload } = t.config {
                    out.push(TimerTrigger {
                        key: doc.key.clone(),
                        service: t.service,
                        function: t.function,
                        name: t.name,
                        qualifier: t.qualifier,
                        cron,
                        enabled,
                        payload,
                        modified: t.modified,
                    });
                }
            }
            if n < 500 {
                break;
            }
            start = format!("{}\u{0}", page.last().map(|d| d.key.clone()).unwrap_or_default());
        }
        Ok(out)
    }
}

struct TimerTrigger {
    key: String,
    service: String,
    function: String,
    name: String,
    qualifier: String,
    cron: String,
    enabled: bool,
    payload: String,
    modified: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        let min = Duration::from_secs(60);
        let t0 = 1_700_000_000_000; // 2023-11-14T22:13:20Z
        match parse_schedule("@every 1h30m", min).unwrap() {
            Schedule::Every(d) => assert_eq!(d, Duration::from_secs(5400)),
            other => panic!("{other:?}"),
        }
        assert!(parse_schedule("@every 5s", min).is_err());
        assert!(parse_schedule("@every 5s", Duration::from_secs(1)).is_ok());
        let s = parse_schedule("0 0/5 * * * *", min).unwrap();
        assert_eq!(rfc3339(s.next_after(t0).unwrap()), "2023-11-14T22:15:00Z");
        let s = parse_schedule("CRON_TZ=Asia/Shanghai 0 0 8 * * *", min).unwrap();
        assert_eq!(rfc3339(s.next_after(t0).unwrap()), "2023-11-15T00:00:00Z");
        // Day-of-week 0 is Sunday: 2023-11-19 is a Sunday.
        let s = parse_schedule("0 0 0 * * 0", min).unwrap();
        assert_eq!(rfc3339(s.next_after(t0).unwrap()), "2023-11-19T00:00:00Z");
        assert!(parse_schedule("CRON_TZ=America/New_York 0 0 8 * * *", min).is_err());
        assert_eq!(zone("Etc/GMT+8"), FixedOffset::west_opt(8 * 3600));
        assert_eq!(zone("Etc/GMT-14"), FixedOffset::east_opt(14 * 3600));
        assert_eq!((zone("Etc/GMT+13"), zone("Etc/GMT+88888888"), zone("Etc/GMT-15")), (None, None, None));
    }
}
