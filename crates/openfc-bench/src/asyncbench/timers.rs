//! Figure 4 of the async benchmark: timer jitter (see the parent module).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use hyper::Method;

use super::{FUNCTIONS, Probe, TIMER_RUN, ms, pct};
use crate::client::{Conn, Signer};
use crate::{Row, check, info};

/// `YYYY-MM-DDTHH:MM:SSZ` → µs since the epoch.
fn rfc3339_us(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let n = |from: usize, to: usize| s.get(from..to)?.parse::<i64>().ok();
    let (y, m, d) = (n(0, 4)?, n(5, 7)?, n(8, 10)?);
    // Days from the civil date (proleptic Gregorian; H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some((days * 86_400 + n(11, 13)? * 3600 + n(14, 16)? * 60 + n(17, 19)?) * 1_000_000)
}

/// Figure 4.
pub(super) async fn timers(signer: &Arc<Signer>, backend: &str) -> anyhow::Result<Vec<Row>> {
    let triggers = [("tick", "every1s", "@every 1s"), ("cron", "cron1s", "* * * * * *")];
    let mut conn = Conn::open(signer.addr).await?;
    let mut probes = Vec::new();
    for (function, _, _) in triggers {
        // Warm: the fires measure the scheduler and the queue, not a cold start.
        let mut probe = Probe::open(signer, function).await?;
        probe.drain().await?;
        probes.push(probe);
    }
    eprintln!("[{backend}] timer triggers @every 1s and `* * * * * *` for {} s", TIMER_RUN.as_secs());
    for (function, name, cron) in triggers {
        let body = serde_json::json!({
            "triggerName": name,
            "triggerType": "timer",
            "triggerConfig": {"cronExpression": cron, "enable": true, "payload": "bench"},
        });
        conn.call_ok(signer.request(Method::POST, &format!("{FUNCTIONS}/{function}/triggers"), body.to_string().into())).await?;
    }
    tokio::time::sleep(TIMER_RUN).await;
    for (function, name, _) in triggers {
        conn.call_ok(signer.request(Method::DELETE, &format!("{FUNCTIONS}/{function}/triggers/{name}"), Bytes::new())).await?;
    }
    // A fire enqueued just before the delete still runs.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut rows = Vec::new();
    for ((_, name, cron), probe) in triggers.into_iter().zip(probes.iter_mut()) {
        let records = probe.drain().await?;
        let (mut late, mut exact, mut times) = (Vec::new(), Vec::new(), Vec::new());
        for r in &records {
            let Some(body) = &r.timer else { continue };
            let event: serde_json::Value = serde_json::from_str(body).with_context(|| format!("timer event {body}"))?;
            if event["triggerName"] != name || event["payload"] != "bench" {
                bail!("unexpected timer event {body}");
            }
            let t = event["triggerTime"].as_str().and_then(rfc3339_us).with_context(|| format!("triggerTime of {body}"))?;
            times.push(t);
            late.push(r.start_us - t);
            if let Some(tick_ms) = r.id.strip_prefix(&format!("timer-{name}-")).and_then(|ms| ms.parse::<i64>().ok()) {
                exact.push(r.start_us - tick_ms * 1000);
            }
        }
        late.sort_unstable();
        exact.sort_unstable();
        let fires = times.len();
        let distinct: HashSet<i64> = times.iter().copied().collect();
        let what = format!("[{backend}] timer `{cron}`");
        // Mean time between ticks: from the exact ticks when known, else from the trigger times.
        let mut ticks: Vec<i64> = if exact.len() == fires {
            records.iter().filter(|r| r.timer.is_some()).filter_map(|r| r.id.rsplit_once('-')?.1.parse::<i64>().ok().map(|t| t * 1000)).collect()
        } else {
            times.clone()
        };
        ticks.sort_unstable();
        let gap = match ticks.len() {
            0 | 1 => "-".to_owned(),
            n => ms((ticks[n - 1] - ticks[0]) / (n as i64 - 1)),
        };
        rows.push(check(
            format!("{what}: fires in {} s, ticks fired twice, mean gap", TIMER_RUN.as_secs()),
            format!("{fires}, {}, {gap}", fires - distinct.len()),
            "≥ 8, 0",
            fires >= 8 && fires == distinct.len(),
        ));
        if fires == 0 {
            continue;
        }
        rows.push(info(
            format!("{what}: start − triggerTime (whole seconds)"),
            format!("p50 {}, max {}", ms(pct(&late, 50.0)), ms(*late.last().unwrap_or(&0))),
        ));
        if cron.starts_with("@every") && exact.len() == fires {
            rows.push(info(
                format!("{what}: start − its exact tick (ms in the event id)"),
                format!("p50 {}, max {}", ms(pct(&exact, 50.0)), ms(*exact.last().unwrap_or(&0))),
            ));
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_times_parse() {
        assert_eq!(rfc3339_us("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_us("2023-11-14T22:13:20Z"), Some(1_700_000_000_000_000));
        assert_eq!(rfc3339_us("2024-02-29T12:00:01Z"), Some(1_709_208_001_000_000));
        assert_eq!(rfc3339_us("2024-02-29T12:00:01+08:00"), None);
    }
}
