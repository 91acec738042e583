//! This node's async workers: claim due events, run each attempt through the invocation use case (renewing
//! the lease meanwhile, cancelled when stopped), and settle it — retry with back-off, give back a throttled
//! attempt, expire, fail — delivering the destination record before the final status.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::Notify;

use super::{AsyncEvent, AsyncPolicy, AsyncStatus, MAX_RESULT, now_ms, running_key};
use crate::error::CoreError;
use crate::invocation::{FunctionError, InvokeRequest};
use crate::names::{FunctionName, Qualifier, ServiceName};
use crate::usecase::Fc;

impl Fc {
    /// Runs this node's async workers until the process ends.
    pub async fn run_async_workers(self: Arc<Self>, node: String) {
        let Ok(events) = self.events() else { return };
        let slots = Arc::new(tokio::sync::Semaphore::new(events.settings.workers.max(1)));
        let mut last_purge = std::time::Instant::now();
        let mut last_depth = std::time::Instant::now() - Duration::from_secs(60);
        loop {
            let free = slots.available_permits() as u32;
            let mut claimed = Vec::new();
            if free > 0 {
                let now = now_ms(self.clock.as_ref());
                let lease_until = now + events.settings.lease.as_millis() as i64;
                match events.queue.claim(now, &node, lease_until, free).await {
                    Ok(c) => claimed = c,
                    Err(e) => tracing::warn!(error = %e, "claiming async events failed"),
                }
            }
            let got = claimed.len();
            for ev in claimed {
                let permit = slots.clone().acquire_owned().await.expect("semaphore never closed");
                let (fc, node) = (self.clone(), node.clone());
                let key = running_key(&ev);
                let cancel = Arc::new(Notify::new());
                events.running.lock().expect("running events").insert(key.clone(), cancel.clone());
                tokio::spawn(async move {
                    fc.run_event(ev, &node, &cancel).await;
                    drop(permit);
                    if let Some(events) = fc.events.as_deref() {
                        events.running.lock().expect("running events").remove(&key);
                        // A slot is free: the claim loop may be waiting for one with a backlog due.
                        events.wake.notify_one();
                    }
                });
            }
            if last_depth.elapsed() > Duration::from_secs(5) {
                last_depth = std::time::Instant::now();
                let now = now_ms(self.clock.as_ref());
                if let Ok((n, oldest)) = events.queue.depth(now).await {
                    metrics::gauge!("openfc_async_queue_depth").set(n as f64);
                    metrics::gauge!("openfc_async_oldest_pending_age_seconds").set(oldest.map_or(0.0, |o| (now - o).max(0) as f64 / 1000.0));
                }
            }
            if last_purge.elapsed() > Duration::from_secs(60) {
                last_purge = std::time::Instant::now();
                let before = now_ms(self.clock.as_ref()) - events.settings.retention.as_millis() as i64;
                if let Err(e) = events.queue.purge_finished(before).await {
                    tracing::warn!(error = %e, "removing finished async events failed");
                }
            }
            if got == 0 || slots.available_permits() == 0 {
                // Idle (or full): wait for a local enqueue, a finished event, or the next poll.
                let _ = tokio::time::timeout(events.settings.poll, events.wake.notified()).await;
            }
        }
    }

    /// One attempt of one claimed event, and what follows from its outcome.
    async fn run_event(&self, mut ev: AsyncEvent, node: &str, cancel: &Notify) {
        let Ok(events) = self.events() else { return };
        let policy = self.async_policy(&ev.account_id, &ev.service, &ev.function, &ev.qualifier).await;
        let now = now_ms(self.clock.as_ref());
        if now - ev.created_ms > policy.max_age.as_millis() as i64 {
            ev.error = Some(format!("the event is older than maxAsyncEventAgeInSeconds ({} s)", policy.max_age.as_secs()));
            metrics::counter!("openfc_async_events_total", "event" => "expired").increment(1);
            self.finish(ev, AsyncStatus::Expired, &policy, None, node).await;
            return;
        }
        metrics::counter!("openfc_async_events_total", "event" => "started").increment(1);
        metrics::histogram!("openfc_async_start_delay_seconds").record((now - ev.due_ms).max(0) as f64 / 1000.0);
        let outcome = {
            let attempt = self.attempt(&ev);
            tokio::pin!(attempt);
            let lease = events.settings.lease;
            let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + lease / 3, lease / 3);
            let mut renewed = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    out = &mut attempt => break out,
                    // Stopped through this node: the attempt (and its request to the instance) is dropped.
                    _ = cancel.notified() => return,
                    _ = renew.tick() => {
                        let until = now_ms(self.clock.as_ref()) + lease.as_millis() as i64;
                        match events.queue.renew(&ev, node, until).await {
                            Ok(true) => renewed = tokio::time::Instant::now(),
                            // Stopped through another node, or taken over: this attempt no longer counts.
                            Ok(false) => {
                                tracing::info!(request_id = %ev.id, "an async event was stopped or taken over while running; its attempt is cancelled");
                                return;
                            }
                            // Unrenewed past the lease, another claim may run it: this one must not run on.
                            Err(e) if renewed.elapsed() >= lease => {
                                tracing::warn!(request_id = %ev.id, error = %e, "the lease of a running async event could not be renewed in time; its attempt is cancelled");
                                return;
                            }
                            Err(e) => tracing::warn!(request_id = %ev.id, error = %e, "renewing an async lease failed"),
                        }
                    }
                }
            }
        };
        let now = now_ms(self.clock.as_ref());
        match outcome {
            Attempt::Done { error: None, body } => {
                ev.result = Some(bounded(&body));
                ev.error = None;
                metrics::counter!("openfc_async_events_total", "event" => "succeeded").increment(1);
                self.finish(ev, AsyncStatus::Succeeded, &policy, Some((200, None, body)), node).await;
            }
            Attempt::Done { error: Some(kind), body } => {
                ev.result = Some(bounded(&body));
                ev.error = Some(kind.as_str().to_owned());
                if ev.attempts <= policy.max_retries {
                    let delay = backoff(events.settings.retry_base, ev.attempts);
                    ev.due_ms = now + delay.as_millis() as i64;
                    metrics::counter!("openfc_async_events_total", "event" => "retried").increment(1);
                    self.settle(ev, AsyncStatus::Retrying, node).await;
                } else {
                    metrics::counter!("openfc_async_events_total", "event" => "failed").increment(1);
                    self.finish(ev, AsyncStatus::Failed, &policy, Some((200, Some(kind), body)), node).await;
                }
            }
            Attempt::Throttled(why) => {
                // Not the function's failure: the attempt is given back and the event waits for capacity.
                ev.attempts = ev.attempts.saturating_sub(1);
                ev.error = Some(why);
                ev.due_ms = now + events.settings.retry_base.as_millis().max(100) as i64;
                metrics::counter!("openfc_async_events_total", "event" => "throttled").increment(1);
                self.settle(ev, AsyncStatus::Retrying, node).await;
            }
            Attempt::Refused(why) => {
                // The target is gone or cannot run: retrying cannot help.
                ev.error = Some(why);
                metrics::counter!("openfc_async_events_total", "event" => "failed").increment(1);
                self.finish(ev, AsyncStatus::Failed, &policy, None, node).await;
            }
        }
    }

    async fn attempt(&self, ev: &AsyncEvent) -> Attempt {
        let target = (|| {
            Ok::<_, CoreError>((ServiceName::parse(&ev.service)?, FunctionName::parse(&ev.function)?, Qualifier::parse(&ev.qualifier)?))
        })();
        let (service, function, q) = match target {
            Ok(t) => t,
            Err(e) => return Attempt::Refused(e.to_string()),
        };
        let prepared = match self.prepare(&ev.account_id, &service, &function, &q).await {
            Ok(p) => p,
            // A fault of openfc or its store counts as an attempt (retried with back-off, then Failed): only
            // throttling is given back, so a persistent fault cannot keep an event going for a day.
            Err(CoreError::Internal(e)) => return Attempt::Done { error: Some(FunctionError::Unhandled), body: Bytes::from(format!("internal error: {e}")) },
            Err(e) => return Attempt::Refused(e.to_string()),
        };
        let req = InvokeRequest { request_id: ev.id.clone(), http: None, want_log: false, event: ev.payload.clone() };
        match self.invoke(&prepared, req).await {
            Ok(out) => Attempt::Done { error: out.error, body: out.body },
            Err(CoreError::Throttled(m)) => Attempt::Throttled(m),
            Err(CoreError::FunctionNotStarted(m)) => Attempt::Done { error: Some(FunctionError::Unhandled), body: Bytes::from(m) },
            Err(e) => Attempt::Done { error: Some(FunctionError::Unhandled), body: Bytes::from(e.to_string()) },
        }
    }

    /// A final status: the destination record first (a crash in between re-runs the event, and the record's
    /// id dedupes the delivery), then the status.
    async fn finish(
        &self,
        mut ev: AsyncEvent,
        status: AsyncStatus,
        policy: &AsyncPolicy,
        response: Option<(u16, Option<FunctionError>, Bytes)>,
        node: &str,
    ) {
        let dest = if status == AsyncStatus::Succeeded { policy.on_success.as_ref() } else { policy.on_failure.as_ref() };
        if let Some(dest) = dest {
            let condition = match (status, response.as_ref().and_then(|r| r.1)) {
                (AsyncStatus::Succeeded, _) => "Success".to_owned(),
                (AsyncStatus::Expired, _) => "EventExpired".to_owned(),
                (_, Some(kind)) => kind.as_str().to_owned(),
                _ => "InvocationFailed".to_owned(),
            };
            let (status_code, function_error, body) = response.clone().unwrap_or((0, None, Bytes::new()));
            let record = json!({
                "timestamp": now_ms(self.clock.as_ref()),
                "requestContext": {
                    "requestId": ev.id,
                    "functionArn": format!("acs:fc:{}:{}:services/{}.{}/functions/{}", self.region, ev.account_id, ev.service, ev.qualifier, ev.function),
                    "condition": condition,
                    "approximateInvokeCount": ev.attempts,
                },
                "requestPayload": String::from_utf8_lossy(&ev.payload),
                "responseContext": {"statusCode": status_code, "functionError": function_error.map_or("", FunctionError::as_str)},
                "responsePayload": String::from_utf8_lossy(&body),
            });
            let id = format!("{}-{}", ev.id, if status == AsyncStatus::Succeeded { "success" } else { "failure" });
            let delivered = self
                .enqueue_async(&ev.account_id, &dest.service, &dest.function, &dest.qualifier, &id, Bytes::from(record.to_string()), "destination")
                .await;
            match delivered {
                Ok(()) => metrics::counter!("openfc_async_destination_deliveries_total", "result" => "ok").increment(1),
                // Delivered by an earlier run of this event.
                Err(CoreError::StatefulAsyncInvocationAlreadyExists(_)) => {}
                Err(e) => {
                    metrics::counter!("openfc_async_destination_deliveries_total", "result" => "failed").increment(1);
                    tracing::warn!(request_id = %ev.id, error = %e, "delivering an async destination record failed");
                    ev.error = Some(format!("{} (destination not delivered: {e})", ev.error.clone().unwrap_or_default()));
                }
            }
        }
        ev.ended_ms = Some(now_ms(self.clock.as_ref()));
        self.settle(ev, status, node).await;
    }

    async fn settle(&self, mut ev: AsyncEvent, status: AsyncStatus, node: &str) {
        let Ok(events) = self.events() else { return };
        ev.status = status;
        match events.queue.settle(&ev, node).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(request_id = %ev.id, "an async event's lease ran out before its attempt ended; another node runs it again"),
            Err(e) => tracing::warn!(request_id = %ev.id, error = %e, "recording an async event's outcome failed; it runs again when its lease ends"),
        }
        if status == AsyncStatus::Retrying {
            events.wake.notify_one();
        }
    }
}

enum Attempt {
    Done { error: Option<FunctionError>, body: Bytes },
    Throttled(String),
    Refused(String),
}

fn bounded(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_RESULT)]);
    text.into_owned()
}

/// `base`, doubled per attempt already made, at most five minutes.
fn backoff(base: Duration, attempts: u32) -> Duration {
    base.saturating_mul(1u32 << attempts.saturating_sub(1).min(16)).min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_and_are_capped() {
        let base = Duration::from_millis(100);
        assert_eq!(backoff(base, 1), Duration::from_millis(100));
        assert_eq!(backoff(base, 2), Duration::from_millis(200));
        assert_eq!(backoff(base, 4), Duration::from_millis(800));
        assert_eq!(backoff(Duration::from_secs(1), 30), Duration::from_secs(300));
    }
}
