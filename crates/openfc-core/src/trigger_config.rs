//! Stored triggers read as typed values: the HTTP-trigger path, the timer scheduler and any other reader
//! get a `Trigger` with a `TriggerConfig` per type instead of walking JSON with string keys.

use serde_json::Value;

use crate::error::CoreResult;
use crate::names::{FunctionName, Qualifier, ServiceName};
use crate::ports::Document;
use crate::usecase::Fc;

/// Who may call an HTTP trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpAuth {
    Anonymous,
    /// An FC signature is required (`authType: function`).
    Function,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TriggerConfig {
    Http { auth: HttpAuth, methods: Vec<String> },
    Timer { cron: String, enabled: bool, payload: String },
    /// The event-source types (oss, log, mns_topic, ...): stored and echoed, their config as sent.
    EventSource { kind: String, config: Value },
}

/// One stored trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub service: String,
    pub function: String,
    pub name: String,
    /// The qualifier it invokes (`LATEST` when none was given).
    pub qualifier: String,
    pub config: TriggerConfig,
    /// When it was last changed (a timer's schedule restarts when this changes).
    pub modified: String,
}

impl TriggerConfig {
    fn from_body(kind: &str, body: &Value) -> TriggerConfig {
        // Stored as an object; a string (the 2021 API's wire form) is read too.
        let cfg = match body.get("triggerConfig") {
            Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
            Some(v) => v.clone(),
            None => Value::Null,
        };
        let text = |k: &str| cfg.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        match kind {
            "http" => TriggerConfig::Http {
                auth: if text("authType") == "function" { HttpAuth::Function } else { HttpAuth::Anonymous },
                methods: cfg
                    .get("methods")
                    .and_then(Value::as_array)
                    .map(|m| m.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default(),
            },
            "timer" => TriggerConfig::Timer {
                cron: text("cronExpression"),
                enabled: cfg.get("enable").and_then(Value::as_bool).unwrap_or(true),
                payload: text("payload"),
            },
            other => TriggerConfig::EventSource { kind: other.to_owned(), config: cfg },
        }
    }
}

impl Trigger {
    /// Reads a stored trigger document (key `svc/fn/name`).
    pub fn from_doc(doc: &Document) -> Trigger {
        let mut parts = doc.key.splitn(3, '/');
        let (service, function, name) =
            (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
        let kind = doc.body.get("triggerType").and_then(Value::as_str).unwrap_or("");
        Trigger {
            service,
            function,
            name,
            qualifier: doc.body.get("qualifier").and_then(Value::as_str).filter(|q| !q.is_empty()).unwrap_or("LATEST").to_owned(),
            config: TriggerConfig::from_body(kind, &doc.body),
            modified: doc.modified_time.clone(),
        }
    }

    /// Whether an HTTP trigger lets this method through.
    pub fn allows_method(&self, method: &str) -> bool {
        matches!(&self.config, TriggerConfig::Http { methods, .. } if methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
    }
}

impl Fc {
    /// The HTTP trigger of a function qualifier, from this node's cache (a node's own trigger writes
    /// invalidate it at once, other nodes' show within the TTL).
    pub async fn http_trigger_typed(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        qualifier: &Qualifier,
    ) -> CoreResult<Trigger> {
        let key = (account.to_owned(), format!("{service}/{function}/{qualifier}"));
        if let Some(t) = self.hot.http_triggers.get(&key) {
            return Ok(t);
        }
        let since = self.hot.http_triggers.epoch();
        let doc = self.http_trigger(account, service, function, qualifier).await?;
        let t = Trigger::from_doc(&doc);
        self.hot.http_triggers.put(since, key, t.clone());
        Ok(t)
    }

    /// Forgets the cached HTTP triggers of a function, here and on the other nodes (after its triggers changed).
    pub(crate) async fn forget_http_triggers(&self, account: &str, service: &ServiceName, function: &FunctionName) {
        let change = crate::cluster::Change::HttpTriggers {
            account: account.to_owned(),
            service: service.to_string(),
            function: function.to_string(),
        };
        self.changed(change).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(body: Value) -> Document {
        Document { account_id: "1".into(), kind: "trigger", key: "s/f/t".into(), body, etag: "e".into(),
            created_time: "c".into(), modified_time: "m".into() }
    }

    #[test]
    fn typed_triggers() {
        let http = Trigger::from_doc(&doc(json!({"triggerType": "http",
            "triggerConfig": {"authType": "function", "methods": ["GET", "post"]}})));
        assert_eq!(http.config, TriggerConfig::Http { auth: HttpAuth::Function, methods: vec!["GET".into(), "post".into()] });
        assert!(http.allows_method("POST") && !http.allows_method("PUT"));
        assert_eq!((http.service.as_str(), http.function.as_str(), http.name.as_str(), http.qualifier.as_str()), ("s", "f", "t", "LATEST"));
        let timer = Trigger::from_doc(&doc(json!({"triggerType": "timer", "qualifier": "prod",
            "triggerConfig": "{\"cronExpression\":\"@every 1m\",\"enable\":false,\"payload\":\"p\"}"})));
        assert_eq!(timer.config, TriggerConfig::Timer { cron: "@every 1m".into(), enabled: false, payload: "p".into() });
        assert_eq!(timer.qualifier, "prod");
        let oss = Trigger::from_doc(&doc(json!({"triggerType": "oss", "triggerConfig": {"events": ["oss:ObjectCreated:*"]}})));
        assert!(matches!(oss.config, TriggerConfig::EventSource { ref kind, .. } if kind == "oss"));
    }
}
