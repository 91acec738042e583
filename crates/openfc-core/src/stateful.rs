//! Stateful asynchronous invocations (spec §5.1): every durable async event can be read back by its
//! invocation id (the caller's `X-Fc-Stateful-Async-Invocation-Id`, else the request id), listed with FC's
//! filters, and stopped. openfc keeps a record of every async invocation (for the retention period), so
//! these answer for all of them, not only for functions with `statefulInvocation` set. Beyond FC, a
//! Failed, Stopped or Expired invocation can be re-driven: enqueued again under a new id.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::asyncq::{AsyncEvent, AsyncStatus, now_ms};
use crate::error::{CoreError, CoreResult};
use crate::names::{FunctionName, Qualifier, ServiceName};
use crate::ports::MetaError;
use crate::usecase::Fc;

/// What ListStatefulAsyncInvocations selects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InvocationFilter {
    pub account: String,
    pub service: String,
    pub function: String,
    /// Only this qualifier's invocations, when given.
    pub qualifier: Option<String>,
    pub status: Option<AsyncStatus>,
    pub id_prefix: Option<String>,
    /// Accepted at or after / before this time (ms).
    pub started_begin: Option<i64>,
    pub started_end: Option<i64>,
    pub descending: bool,
    /// Continue after this (created_ms, id), in the listing's order.
    pub after: Option<(i64, String)>,
    pub limit: usize,
}

/// The caller's invocation id: `[A-Za-z_][A-Za-z0-9_-]{0,127}` (spec §5.6).
pub fn check_invocation_id(id: &str) -> CoreResult<()> {
    let mut chars = id.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && id.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(CoreError::bad_format("StatefulAsyncInvocationId", &crate::names::name_pattern(128), id))
    }
}

fn not_found(function: &str, id: &str) -> CoreError {
    CoreError::StatefulAsyncInvocationNotFound(format!("stateful async invocation '{id}' of function '{function}' does not exist"))
}

/// The id a re-driven invocation runs under (a valid invocation id whatever the original's length).
pub fn redrive_id(id: &str) -> String {
    format!("{}-redrive-{}", id.chars().take(90).collect::<String>(), uuid::Uuid::new_v4().simple())
}

/// An invocation as FC's `StatefulAsyncInvocation` model shows it.
pub fn invocation_json(ev: &AsyncEvent, include_payload: bool) -> Value {
    let mut events = vec![json!({"eventId": 1, "status": "Enqueued", "timestamp": ev.created_ms, "eventDetail": ""})];
    if let Some(t) = ev.started_ms {
        events.push(json!({"eventId": 2, "status": "Started", "timestamp": t, "eventDetail": ""}));
    }
    if let Some(t) = ev.ended_ms {
        events.push(json!({"eventId": 3, "status": ev.status.as_str(), "timestamp": t, "eventDetail": ev.error.clone().unwrap_or_default()}));
    }
    let mut out = json!({
        "invocationId": ev.id,
        "requestId": ev.id,
        "serviceName": ev.service,
        "functionName": ev.function,
        "qualifier": ev.qualifier,
        "status": ev.status.as_str(),
        "startedTime": ev.created_ms,
        "endTime": ev.ended_ms.unwrap_or(0),
        "durationMs": match (ev.started_ms, ev.ended_ms) { (Some(s), Some(e)) => (e - s).max(0), _ => 0 },
        "alreadyRetriedTimes": ev.attempts.saturating_sub(1),
        "invocationErrorMessage": ev.error.clone().unwrap_or_default(),
        "returnPayload": ev.result.clone().unwrap_or_default(),
        "destinationStatus": "",
        "instanceId": "",
        "events": events,
    });
    if include_payload {
        out["invocationPayload"] = String::from_utf8_lossy(&ev.payload).into_owned().into();
    }
    out
}

impl Fc {
    fn queue(&self) -> CoreResult<&dyn crate::asyncq::AsyncQueue> {
        self.events.as_deref().map(|e| e.queue.as_ref()).ok_or_else(|| CoreError::Internal("asynchronous invocations are not configured".into()))
    }

    pub async fn get_stateful_invocation(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        id: &str,
    ) -> CoreResult<AsyncEvent> {
        self.fresh_function(account, service, function).await?;
        self.queue()?.get(account, service.as_str(), function.as_str(), id).await.map_err(|e| match e {
            MetaError::NotFound => not_found(function.as_str(), id),
            other => other.into(),
        })
    }

    /// One page, and the token of the next when more remain.
    pub async fn list_stateful_invocations(&self, filter: &InvocationFilter) -> CoreResult<(Vec<AsyncEvent>, Option<String>)> {
        let (service, function) = (ServiceName::parse(&filter.service)?, FunctionName::parse(&filter.function)?);
        self.fresh_function(&filter.account, &service, &function).await?;
        let mut probe = filter.clone();
        probe.limit = filter.limit + 1;
        let mut page = self.queue()?.list(&probe).await?;
        let next = (page.len() > filter.limit).then(|| {
            page.truncate(filter.limit);
            page.last().map(|e| format!("{}:{}", e.created_ms, e.id)).unwrap_or_default()
        });
        Ok((page, next))
    }

    /// Stops an invocation that has not finished: it will not run (again); a running attempt is cancelled
    /// by the node running it (at once on this node, at its next lease renewal on another).
    pub async fn stop_stateful_invocation(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        id: &str,
    ) -> CoreResult<()> {
        let ev = self.get_stateful_invocation(account, service, function, id).await?;
        let stopped = self.queue()?.stop(&ev, now_ms(self.clock.as_ref())).await?;
        if !stopped {
            return Err(CoreError::invalid(format!(
                "stateful async invocation '{id}' has already finished ({})",
                ev.status.as_str()
            )));
        }
        if let Some(events) = &self.events {
            events.cancel_local(&ev);
        }
        metrics::counter!("openfc_async_events_total", "event" => "stopped").increment(1);
        Ok(())
    }

    /// Enqueues a finished (Failed, Stopped, Expired) invocation's payload again under a new id.
    pub async fn redrive_stateful_invocation(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        id: &str,
    ) -> CoreResult<String> {
        let ev = self.get_stateful_invocation(account, service, function, id).await?;
        if !matches!(ev.status, AsyncStatus::Failed | AsyncStatus::Stopped | AsyncStatus::Expired) {
            return Err(CoreError::invalid(format!(
                "only a Failed, Stopped or Expired invocation can be re-driven; '{id}' is {}",
                ev.status.as_str()
            )));
        }
        let new_id = redrive_id(&ev.id);
        let q = Qualifier::parse(&ev.qualifier)?;
        self.enqueue_async(account, service, function, &q, &new_id, Bytes::from(ev.payload.to_vec()), "redrive").await?;
        Ok(new_id)
    }

    /// Functions with stateful invocation enabled in an async config: `{serviceName, functionName, qualifier}`.
    pub async fn list_stateful_functions(&self, account: &str) -> CoreResult<Vec<Value>> {
        let mut out = Vec::new();
        let mut start = String::new();
        loop {
            let docs = self.meta.list_docs(account, crate::configs::ASYNC, "", &start, 500).await?;
            for d in &docs {
                if d.body.get("statefulInvocation").and_then(Value::as_bool) == Some(true) {
                    let mut parts = d.key.splitn(3, '/');
                    out.push(json!({"serviceName": parts.next(), "functionName": parts.next(), "qualifier": parts.next()}));
                }
            }
            if docs.len() < 500 {
                break;
            }
            start = format!("{}\u{0}", docs.last().map(|d| d.key.clone()).unwrap_or_default());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocation_ids() {
        for (id, ok) in [("a", true), ("_x-1", true), ("1abc", false), ("", false), ("a b", false), (&"a".repeat(128), true),
            (&"a".repeat(129), false)] {
            assert_eq!(check_invocation_id(id).is_ok(), ok, "{id}");
        }
    }
}
