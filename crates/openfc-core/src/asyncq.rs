//! Durable asynchronous invocations. An async request (and every timer fire and destination delivery) is
//! committed to the `AsyncQueue` port before it is answered 202; workers on every node claim due events
//! with a lease (one conditional UPDATE each, so several nodes on one PostgreSQL never run an event twice
//! at once), run them through the invocation use case, and record the outcome. An event whose node died is
//! claimed again when its lease runs out: at least once, never lost.
//!
//! The function's async config (per qualifier, falling back to LATEST's) acts: function errors are retried
//! `maxAsyncRetryAttempts` times with exponential back-off; throttling is retried, not counted, until the
//! event is older than `maxAsyncEventAgeInSeconds` and expires; `destinationConfig` names an openfc
//! function that receives FC's destination record, itself as an async event.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::error::{CoreError, CoreResult};

use crate::names::{FunctionName, Qualifier, ServiceName};
use crate::ports::MetaError;
use crate::usecase::Fc;

/// Where an async event is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsyncStatus {
    Enqueued,
    Running,
    Retrying,
    Succeeded,
    Failed,
    Stopped,
    Expired,
}

impl AsyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AsyncStatus::Enqueued => "Enqueued",
            AsyncStatus::Running => "Running",
            AsyncStatus::Retrying => "Retrying",
            AsyncStatus::Succeeded => "Succeeded",
            AsyncStatus::Failed => "Failed",
            AsyncStatus::Stopped => "Stopped",
            AsyncStatus::Expired => "Expired",
        }
    }

    pub fn parse(s: &str) -> Option<AsyncStatus> {
        [
            AsyncStatus::Enqueued,
            AsyncStatus::Running,
            AsyncStatus::Retrying,
            AsyncStatus::Succeeded,
            AsyncStatus::Failed,
            AsyncStatus::Stopped,
            AsyncStatus::Expired,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// One asynchronous invocation, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AsyncEvent {
    pub account_id: String,
    pub service: String,
    pub function: String,
    pub qualifier: String,
    /// The invocation id: the request id, or the caller's stateful invocation id. Unique per function.
    pub id: String,
    pub payload: Bytes,
    pub status: AsyncStatus,
    /// Attempts started so far (a throttled attempt is given back).
    pub attempts: u32,
    pub created_ms: i64,
    /// Not run before this time.
    pub due_ms: i64,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    /// The last error (function error type and message, or why it could not run).
    pub error: Option<String>,
    /// The function's result (bounded).
    pub result: Option<String>,
    /// What enqueued it: `invoke`, `timer`, `destination`.
    pub source: String,
}

impl AsyncEvent {
    /// A new event, due now.
    #[allow(clippy::too_many_arguments)]
    pub fn new(account: &str, service: &str, function: &str, qualifier: &str, id: &str, payload: Bytes, now_ms: i64, source: &str) -> AsyncEvent {
        AsyncEvent {
            account_id: account.to_owned(),
            service: service.to_owned(),
            function: function.to_owned(),
            qualifier: qualifier.to_owned(),
            id: id.to_owned(),
            payload,
            status: AsyncStatus::Enqueued,
            attempts: 0,
            created_ms: now_ms,
            due_ms: now_ms,
            started_ms: None,
            ended_ms: None,
            error: None,
            result: None,
            source: source.to_owned(),
        }
    }
}

/// Largest result kept with a finished event.
pub const MAX_RESULT: usize = 16 * 1024;

/// The port to the durable queue (openfc-meta's SQL tables).
#[async_trait]
pub trait AsyncQueue: Send + Sync {
    /// Stores a new event; `AlreadyExists` when the function already has one with this id.
    async fn enqueue(&self, ev: &AsyncEvent) -> Result<(), MetaError>;
    /// Claims up to `limit` events that are due at `now_ms` or whose lease has run out: each becomes
    /// `Running` with one more attempt, leased to `owner` until `lease_until_ms`.
    async fn claim(&self, now_ms: i64, owner: &str, lease_until_ms: i64, limit: u32) -> Result<Vec<AsyncEvent>, MetaError>;
    /// Records the end of an attempt (the event's status, attempts, due time, error, result) if `owner`
    /// still holds its lease; false when it does not (the lease ran out and another node took it).
    async fn settle(&self, ev: &AsyncEvent, owner: &str) -> Result<bool, MetaError>;
    /// One event by its invocation id; `NotFound` when there is none.
    async fn get(&self, account: &str, service: &str, function: &str, id: &str) -> Result<AsyncEvent, MetaError>;
    /// One page of a function's events, as the filter says (`limit` rows at most).
    async fn list(&self, filter: &crate::stateful::InvocationFilter) -> Result<Vec<AsyncEvent>, MetaError>;
    /// Marks an unfinished event Stopped (it will not run again; its lease ends); false when it had finished.
    async fn stop(&self, ev: &AsyncEvent, now_ms: i64) -> Result<bool, MetaError>;
    /// Extends `owner`'s lease of a running event; false when the lease is no longer `owner`'s.
    async fn renew(&self, ev: &AsyncEvent, owner: &str, lease_until_ms: i64) -> Result<bool, MetaError>;
    /// Events not finished yet (waiting, retrying or running), and the creation time of the oldest.
    async fn depth(&self, now_ms: i64) -> Result<(u64, Option<i64>), MetaError>;
    /// Deletes finished events that ended before `before_ms`; returns how many.
    async fn purge_finished(&self, before_ms: i64) -> Result<u64, MetaError>;
    /// Moves a timer from `expected_next` (None: never fired) to `next_ms`, enqueuing `fire` in the same
    /// transaction; false when another node (or an earlier run) moved it first.
    /// `stamp` names the schedule `next_ms` was computed from.
    async fn advance_timer(
        &self,
        key: &str,
        expected_next: Option<i64>,
        next_ms: i64,
        stamp: &str,
        fire: Option<&AsyncEvent>,
    ) -> Result<bool, MetaError>;
    /// When a timer fires next and the stamp of its schedule, if it has been scheduled.
    async fn timer_next(&self, key: &str) -> Result<Option<(i64, String)>, MetaError>;
}

/// How this node runs async events.
#[derive(Debug, Clone)]
pub struct AsyncSettings {
    /// Events run at once by this node.
    pub workers: usize,
    /// First retry delay after a function error; doubled each time (capped at five minutes).
    pub retry_base: Duration,
    /// Finished events are kept this long, then removed.
    pub retention: Duration,
    /// How often the queue is polled for events other nodes enqueued or retries fell due.
    pub poll: Duration,
    /// Shortest timer interval accepted at run time (FC's minimum is one minute; tests lower it).
    pub min_timer_interval: Duration,
    /// How long a claim holds an event without renewal: a node that dies leaves its running events to the
    /// others after this. Renewed every third of it while the attempt runs.
    pub lease: Duration,
}

impl Default for AsyncSettings {
    fn default() -> Self {
        AsyncSettings {
            workers: 16,
            retry_base: Duration::from_secs(1),
            retention: Duration::from_secs(7 * 24 * 3600),
            poll: Duration::from_millis(250),
            min_timer_interval: Duration::from_secs(60),
            lease: Duration::from_secs(30),
        }
    }
}

/// The queue and what wakes this node's workers.
pub struct Events {
    pub queue: Arc<dyn AsyncQueue>,
    pub settings: AsyncSettings,
    /// Rung by a local enqueue, so an idle worker starts at once rather than at its next poll.
    pub wake: Notify,
    /// The events this node runs now, each with what cancels its attempt (StopStatefulAsyncInvocation).
    running: std::sync::Mutex<std::collections::HashMap<String, Arc<Notify>>>,
}

fn running_key(ev: &AsyncEvent) -> String {
    format!("{}/{}/{}/{}", ev.account_id, ev.service, ev.function, ev.id)
}

impl Events {
    pub fn new(queue: Arc<dyn AsyncQueue>, settings: AsyncSettings) -> Events {
        Events { queue, settings, wake: Notify::new(), running: Default::default() }
    }

    /// Cancels the attempt of `ev` if this node runs it.
    pub fn cancel_local(&self, ev: &AsyncEvent) {
        if let Some(n) = self.running.lock().expect("running events").get(&running_key(ev)) {
            n.notify_one();
        }
    }
}

pub fn now_ms(clock: &dyn crate::ports::Clock) -> i64 {
    (clock.now().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The effective async config of a function qualifier.
#[derive(Debug, Clone, PartialEq)]
pub struct AsyncPolicy {
    pub max_retries: u32,
    pub max_age: Duration,
    pub on_success: Option<Destination>,
    pub on_failure: Option<Destination>,
}

impl Default for AsyncPolicy {
    fn default() -> Self {
        AsyncPolicy { max_retries: 3, max_age: Duration::from_secs(86_400), on_success: None, on_failure: None }
    }
}

/// An openfc function a destination record is delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub service: ServiceName,
    pub qualifier: Qualifier,
    pub function: FunctionName,
}

/// `acs:fc:{region}:{account}:services/{svc}[.{q}]/functions/{fn}` (region and account may be empty); the
/// account, when given, must be the caller's. Other destination kinds (MNS, EventBridge) are refused.
pub fn parse_destination(arn: &str, account: &str) -> CoreResult<Destination> {
    let refuse = |why: &str| {
        CoreError::invalid(format!(
            "DestinationConfig.Destination is set to an invalid value (allowed: acs:fc:{{region}}:{{accountId}}:\
             services/{{service}}[.{{qualifier}}]/functions/{{function}}, actual: '{arn}'): it {why}; openfc delivers \
             to functions only"
        ))
    };
    let rest = arn.strip_prefix("acs:fc:").ok_or_else(|| refuse("is not a Function Compute function"))?;
    let mut parts = rest.splitn(3, ':');
    let (_region, acct, resource) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !acct.is_empty() && acct != account {
        return Err(refuse("belongs to another account"));
    }
    let resource = resource.strip_prefix("services/").ok_or_else(|| refuse("does not name a function"))?;
    let (svc, func) = resource.split_once("/functions/").ok_or_else(|| refuse("does not name a function"))?;
    let (svc, q) = svc.split_once('.').unwrap_or((svc, ""));
    Ok(Destination {
        service: ServiceName::parse(svc)?,
        qualifier: Qualifier::parse(q)?,
        function: FunctionName::parse(func)?,
    })
}

fn policy_from(doc: &Value, account: &str) -> AsyncPolicy {
    let dest = |which: &str| {
        doc.pointer(&format!("/destinationConfig/{which}/destination"))
            .and_then(Value::as_str)
            .and_then(|arn| parse_destination(arn, account).ok())
    };
    AsyncPolicy {
        max_retries: doc.get("maxAsyncRetryAttempts").and_then(Value::as_u64).map_or(3, |n| n.min(8) as u32),
        max_age: Duration::from_secs(doc.get("maxAsyncEventAgeInSeconds").and_then(Value::as_u64).unwrap_or(86_400).clamp(1, 86_400)),
        on_success: dest("onSuccess"),
        on_failure: dest("onFailure"),
    }
}

impl Fc {
    fn events(&self) -> CoreResult<&Events> {
        self.events.as_deref().ok_or_else(|| CoreError::Internal("asynchronous invocations are not configured".into()))
    }

    /// Commits an asynchronous invocation; once this returns, it runs even if this node dies. The target is
    /// checked first (it must exist and its runtime must be one this invoker runs).
    #[allow(clippy::too_many_arguments)]
    pub async fn enqueue_async(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        q: &Qualifier,
        id: &str,
        payload: Bytes,
        source: &str,
    ) -> CoreResult<()> {
        self.check_invocable(account, service, function, q, &payload).await?;
        let events = self.events()?;
        let now = now_ms(self.clock.as_ref());
        let ev = AsyncEvent::new(account, service.as_str(), function.as_str(), &q.to_string(), id, payload, now, source);
        events.queue.enqueue(&ev).await.map_err(|e| match e {
            MetaError::AlreadyExists => CoreError::StatefulAsyncInvocationAlreadyExists(format!(
                "stateful async invocation '{id}' of function '{function}' already exists"
            )),
            other => other.into(),
        })?;
        metrics::counter!("openfc_async_events_total", "event" => "enqueued").increment(1);
        events.wake.notify_one();
        Ok(())
    }

    /// The queue as `/health` shows it: unfinished events (waiting, retrying, running) and the age of the
    /// oldest, in seconds.
    pub async fn async_health(&self) -> Value {
        let Ok(events) = self.events() else { return json!({"enabled": false}) };
        let now = now_ms(self.clock.as_ref());
        match events.queue.depth(now).await {
            Ok((pending, oldest)) => json!({"enabled": true, "pending": pending,
                "oldestPendingAgeSeconds": oldest.map_or(0.0, |o| (now - o).max(0) as f64 / 1000.0),
                "workers": events.settings.workers}),
            Err(e) => json!({"enabled": true, "error": e.to_string()}),
        }
    }

    /// The async config of a function qualifier (its own, else LATEST's, else FC's defaults), cached.
    pub async fn async_policy(&self, account: &str, service: &str, function: &str, qualifier: &str) -> AsyncPolicy {
        let key = (account.to_owned(), format!("{service}/{function}/{qualifier}"));
        if let Some(p) = self.hot.async_policies.get(&key) {
            return p;
        }
        let since = self.hot.async_policies.epoch();
        let mut policy = AsyncPolicy::default();
        for q in [qualifier, "LATEST"] {
            let key = crate::dockey::DocKey::AsyncConfig { service, function, qualifier: &q }.key();
            match self.meta.get_doc(account, crate::configs::ASYNC, &key).await {
                Ok(doc) => {
                    policy = policy_from(&doc.body, account);
                    break;
                }
                Err(MetaError::NotFound) => {}
                Err(e) => {
                    // Not cached: the configured retries and destinations apply again at the next read.
                    tracing::warn!(error = %e, "reading an async config failed; FC's defaults apply to this attempt");
                    return policy;
                }
            }
        }
        self.hot.async_policies.put(since, key, policy.clone());
        policy
    }
}

mod worker;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_name_functions_of_this_account() {
        let d = parse_destination("acs:fc:cn-hangzhou:123:services/s.prod/functions/f", "123").unwrap();
        assert_eq!((d.service.as_str(), d.qualifier.to_string(), d.function.as_str()), ("s", "prod".to_owned(), "f"));
        let d = parse_destination("acs:fc:::services/s/functions/f", "123").unwrap();
        assert_eq!(d.qualifier, Qualifier::Latest);
        for bad in ["acs:mns:cn-hangzhou:123:/queues/q/messages", "acs:fc:cn-hangzhou:999:services/s/functions/f",
            "acs:fc:::services/s", "acs:eventbridge:cn-hangzhou:123:eventbus/default"] {
            let e = parse_destination(bad, "123").unwrap_err();
            assert!(e.to_string().contains("openfc delivers to functions only"), "{bad}: {e}");
        }
    }

    #[test]
    fn policy_defaults_and_fields() {
        assert_eq!(policy_from(&json!({}), "1"), AsyncPolicy::default());
        let p = policy_from(&json!({"maxAsyncRetryAttempts": 0, "maxAsyncEventAgeInSeconds": 5,
            "destinationConfig": {"onFailure": {"destination": "acs:fc:::services/s/functions/dlq"}}}), "1");
        assert_eq!((p.max_retries, p.max_age), (0, Duration::from_secs(5)));
        assert_eq!(p.on_failure.unwrap().function.as_str(), "dlq");
        assert!(p.on_success.is_none());
    }
}
