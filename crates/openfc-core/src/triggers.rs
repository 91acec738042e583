//! Triggers (spec §5.5): http and timer configs validated fully, the event-source types validated for
//! shape; `triggerConfig` accepted as an object or a JSON string; at most one HTTP trigger per function;
//! a function with triggers cannot be deleted.

use croner::parser::{CronParser, Seconds, Year};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{CoreError, CoreResult, meta_err};
use crate::names::{FunctionName, Qualifier, ServiceName};
use crate::page::PageQuery;
use crate::ports::{Document, MetaError};
use crate::usecase::{Fc, etag_matches, new_etag};
use crate::wire::lenient::{Field, Shape, parse_body};

pub use crate::dockey::TRIGGER as KIND;

pub const TYPES: &[&str] =
    &["http", "timer", "oss", "log", "mns_topic", "tablestore", "cdn_events", "eventbridge", "rds"];
const HTTP_METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"];

static TRIGGER_SHAPE: Shape = Shape::Object(&[
    Field("triggerName", &Shape::Any),
    Field("triggerType", &Shape::Any),
    Field("triggerConfig", &Shape::Any),
    Field("sourceArn", &Shape::Any),
    Field("invocationRole", &Shape::Any),
    Field("qualifier", &Shape::Any),
    Field("description", &Shape::Any),
]);

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TriggerBody {
    trigger_name: Option<String>,
    trigger_type: Option<String>,
    trigger_config: Option<Value>,
    source_arn: Option<String>,
    invocation_role: Option<String>,
    qualifier: Option<String>,
    description: Option<String>,
}

/// `triggerConfig` arrives as an object (fc2 SDKs) or a string holding JSON (2021 SDK).
fn config_object(v: Value) -> CoreResult<Map<String, Value>> {
    let v = match v {
        Value::String(s) => serde_json::from_str(&s)
            .map_err(|e| CoreError::invalid_value(TRIGGER_CONFIG, "a JSON object", format_args!("{e}")))?,
        other => other,
    };
    match v {
        Value::Object(m) => Ok(m),
        other => Err(CoreError::invalid_value(TRIGGER_CONFIG, "a JSON object", other)),
    }
}

const TRIGGER_CONFIG: &str = "TriggerConfig";

/// `TriggerConfig.AuthType`: a config key as messages name it.
fn config_field(name: &str) -> String {
    format!("{TRIGGER_CONFIG}.{}", crate::error::pascal(name))
}

/// Reads a config key case-insensitively, as FC's backend does.
fn field<'a>(cfg: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    cfg.get(name).or_else(|| cfg.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)).filter(|v| !v.is_null())
}

fn want_str<'a>(cfg: &'a Map<String, Value>, name: &str, required: bool) -> CoreResult<Option<&'a str>> {
    match field(cfg, name) {
        None if required => Err(CoreError::required(&config_field(name))),
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(CoreError::invalid_value(&config_field(name), "a string", other)),
    }
}

fn want_bool(cfg: &Map<String, Value>, name: &str) -> CoreResult<()> {
    match field(cfg, name) {
        None | Some(Value::Bool(_)) => Ok(()),
        Some(other) => Err(CoreError::invalid_value(&config_field(name), "true | false", other)),
    }
}

fn want_kind(cfg: &Map<String, Value>, name: &str, ok: fn(&Value) -> bool, what: &str) -> CoreResult<()> {
    match field(cfg, name) {
        None => Ok(()),
        Some(v) if ok(v) => Ok(()),
        Some(other) => Err(CoreError::invalid_value(&config_field(name), what, other)),
    }
}

fn one_of(name: &str, value: Option<&str>, allowed: &[&str]) -> CoreResult<()> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(CoreError::invalid_value(&config_field(name), allowed.join(" | "), v)),
        _ => Ok(()),
    }
}

/// The shortest `@every` interval accepted, in seconds: FC's one minute unless the operator lowered it
/// (`--timer-min-interval`, for tests). Process-wide: it is a deployment setting, read by validation.
static MIN_EVERY_SECS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(60);

/// Sets the shortest `@every` interval accepted (at start-up).
pub fn set_min_timer_interval(secs: u64) {
    MIN_EVERY_SECS.store(secs.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// `@every 1h30m`: a Go-style duration of at least one minute (or the configured minimum).
fn every(spec: &str) -> CoreResult<()> {
    let allowed = "@every followed by a duration such as 5m or 1h30m";
    let bad = || CoreError::invalid_value(CRON, allowed, format_args!("@every {spec}"));
    // The scheduler's own parser (`timers::every_duration`): what validation accepts, the scheduler runs; a
    // duration too long to count in seconds is refused, not wrapped (the cron fuzz target found that here).
    let total = crate::timers::every_duration(spec).ok_or_else(bad)?.as_secs();
    let min = MIN_EVERY_SECS.load(std::sync::atomic::Ordering::Relaxed);
    if total < min {
        let least = if min == 60 { "1m".to_owned() } else { format!("{min}s") };
        let allowed = format!("@every of at least {least}");
        return Err(CoreError::invalid_value(CRON, allowed, format_args!("@every {spec}")));
    }
    Ok(())
}

const CRON: &str = "TriggerConfig.CronExpression";

/// FC cron: `@every <duration>` or six fields (seconds first), optionally after `CRON_TZ=<zone> `.
pub fn validate_cron(expr: &str) -> CoreResult<()> {
    validate_cron_syntax(expr)?;
    // Accepted means it fires: a day that never comes (`0 0 0 30 2 *`) would otherwise be stored, searched for
    // at every scheduler pass (milliseconds each, then a warning) and never run.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let fires = crate::timers::parse_schedule(expr, std::time::Duration::ZERO).ok().and_then(|s| s.next_after(now)).is_some();
    if !fires {
        return Err(CoreError::invalid(format!("{CRON} is set to an invalid value (actual: '{}'): the schedule never fires", expr.trim())));
    }
    Ok(())
}

fn validate_cron_syntax(expr: &str) -> CoreResult<()> {
    let mut expr = expr.trim();
    if let Some(rest) = expr.strip_prefix("CRON_TZ=") {
        let (zone, cron) = rest
            .split_once(' ')
            .ok_or_else(|| CoreError::invalid_value(CRON, "CRON_TZ=<zone> followed by a schedule", expr))?;
        let ok = !zone.is_empty()
            && zone.split('/').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c)));
        if !ok {
            return Err(CoreError::invalid_value(CRON, "CRON_TZ=<time zone name>", format_args!("CRON_TZ={zone}")));
        }
        // Accepted means it fires: a zone openfc cannot compute (daylight saving needs a zone database) is
        // refused here rather than stored and never run.
        if !crate::timers::zone_supported(zone) {
            return Err(CoreError::invalid_value(
                CRON,
                "CRON_TZ=UTC, a zone without daylight saving (e.g. Asia/Shanghai, Asia/Tokyo) or Etc/GMT±N: openfc \
                 computes no daylight saving",
                format_args!("CRON_TZ={zone}"),
            ));
        }
        expr = cron.trim();
    }
    if let Some(spec) = expr.strip_prefix("@every ") {
        return every(spec);
    }
    if expr.split_whitespace().count() != 6 {
        return Err(CoreError::invalid_value(
            CRON,
            "6 fields (second minute hour day month weekday) or @every <duration>",
            expr,
        ));
    }
    let parser = CronParser::builder().seconds(Seconds::Required).year(Year::Disallowed).sloppy_ranges(true).build();
    parser.parse(expr).map(|_| ()).map_err(|e| {
        CoreError::invalid(format!("{CRON} is set to an invalid value (actual: '{expr}'): {e}"))
    })
}

fn validate_config(kind: &str, cfg: &Map<String, Value>, source_arn: Option<&str>) -> CoreResult<()> {
    let need_arn = |service: &str| -> CoreResult<()> {
        match source_arn {
            Some(a) if a.starts_with(&format!("acs:{service}:")) => Ok(()),
            other => Err(CoreError::invalid_value(
                "SourceArn",
                format_args!("acs:{service}:... for a {kind} trigger"),
                other.unwrap_or(""),
            )),
        }
    };
    let is_array = |v: &Value| v.is_array();
    let is_object = |v: &Value| v.is_object();
    let is_number = |v: &Value| v.is_number();
    match kind {
        "http" => {
            one_of("authType", want_str(cfg, "authType", true)?, &["anonymous", "function"])?;
            let methods = field(cfg, "methods").and_then(Value::as_array).filter(|m| !m.is_empty()).ok_or_else(|| {
                CoreError::invalid_value(
                    "TriggerConfig.Methods",
                    format_args!("a non-empty list of {}", HTTP_METHODS.join(" | ")),
                    field(cfg, "methods").unwrap_or(&Value::Null),
                )
            })?;
            for m in methods {
                match m.as_str() {
                    Some(m) if HTTP_METHODS.contains(&m) => {}
                    _ => return Err(CoreError::invalid_value("TriggerConfig.Methods", HTTP_METHODS.join(" | "), m)),
                }
            }
            want_bool(cfg, "disableURLInternet")?;
            want_str(cfg, "authConfig", false)?;
        }
        "timer" => {
            validate_cron(want_str(cfg, "cronExpression", true)?.unwrap_or(""))?;
            want_bool(cfg, "enable")?;
            want_str(cfg, "payload", false)?;
        }
        "oss" => {
            need_arn("oss")?;
            let events = field(cfg, "events").and_then(Value::as_array).filter(|e| !e.is_empty());
            let ok = events.is_some_and(|e| e.iter().all(|x| x.as_str().is_some_and(|s| s.starts_with("oss:"))));
            if !ok {
                return Err(CoreError::invalid_value(
                    "TriggerConfig.Events",
                    "a non-empty list of oss:... events",
                    field(cfg, "events").unwrap_or(&Value::Null),
                ));
            }
            want_kind(cfg, "filter", is_object, "an object")?;
        }
        "log" => {
            need_arn("log")?;
            for key in ["sourceConfig", "jobConfig", "logConfig"] {
                if !field(cfg, key).is_some_and(Value::is_object) {
                    return Err(match field(cfg, key) {
                        None => CoreError::required(&config_field(key)),
                        Some(other) => CoreError::invalid_value(&config_field(key), "an object", other),
                    });
                }
            }
            want_bool(cfg, "enable")?;
        }
        "mns_topic" => {
            need_arn("mns")?;
            one_of("notifyContentFormat", want_str(cfg, "notifyContentFormat", false)?, &["STREAM", "JSON"])?;
            one_of(
                "notifyStrategy",
                want_str(cfg, "notifyStrategy", false)?,
                &["BACKOFF_RETRY", "EXPONENTIAL_DECAY_RETRY"],
            )?;
        }
        "tablestore" => need_arn("ots")?,
        "cdn_events" => {
            need_arn("cdn")?;
            want_str(cfg, "eventName", true)?;
            want_str(cfg, "eventVersion", true)?;
            want_kind(cfg, "filter", is_object, "an object")?;
        }
        "eventbridge" => {
            want_bool(cfg, "triggerEnable")?;
            want_kind(cfg, "eventSourceConfig", is_object, "an object")?;
        }
        "rds" => {
            need_arn("rds")?;
            want_kind(cfg, "subscriptionObjects", is_array, "a list")?;
            want_kind(cfg, "retry", is_number, "a number")?;
            want_kind(cfg, "concurrency", is_number, "a number")?;
        }
        other => {
            return Err(CoreError::invalid_value("TriggerType", TYPES.join(" | "), other));
        }
    }
    Ok(())
}

fn trigger_key(service: &ServiceName, function: &FunctionName, name: &str) -> String {
    crate::dockey::DocKey::Trigger { service: service.as_str(), function: function.as_str(), name }.key()
}

fn trigger_name(name: &str) -> CoreResult<String> {
    // Trigger names follow the service rule (1–128).
    ServiceName::parse(name)
        .map(|n| n.to_string())
        .map_err(|_| CoreError::bad_format("TriggerName", &crate::names::name_pattern(128), name))
}

/// The JSON of a trigger. `config_as_string` for the 2021-04-06 API; `base_url` is openfc's public URL.
pub fn trigger_json(doc: &Document, config_as_string: bool, base_url: &str) -> Value {
    let mut out = doc.body.as_object().cloned().unwrap_or_default();
    let (svc, func) = {
        let mut parts = doc.key.split('/');
        (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned())
    };
    if out.get("triggerType").and_then(Value::as_str) == Some("http") {
        let q = out.get("qualifier").and_then(Value::as_str).filter(|q| !q.is_empty()).unwrap_or("LATEST").to_owned();
        let url = format!("{base_url}/2016-08-15/proxy/{svc}.{q}/{func}/");
        out.insert("urlInternet".into(), url.clone().into());
        out.insert("urlIntranet".into(), url.into());
    }
    if config_as_string && let Some(cfg) = out.get("triggerConfig").cloned() {
        out.insert("triggerConfig".into(), cfg.to_string().into());
    }
    out.insert("createdTime".into(), doc.created_time.clone().into());
    out.insert("lastModifiedTime".into(), doc.modified_time.clone().into());
    out.entry("status").or_insert("".into());
    out.entry("targetArn").or_insert("".into());
    out.entry("domainName").or_insert("".into());
    Value::Object(out)
}

impl Fc {
    async fn trigger_doc(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        name: &str,
    ) -> CoreResult<Document> {
        match self.meta.get_doc(account, KIND, &trigger_key(service, function, name)).await {
            Ok(d) => Ok(d),
            Err(MetaError::NotFound) => {
                self.fresh_function(account, service, function).await?;
                Err(trigger_not_found(service, function, name))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A trigger's qualifier must name LATEST, a version or an alias that exists.
    async fn check_qualifier(&self, account: &str, service: &ServiceName, q: Option<&str>) -> CoreResult<()> {
        match q.filter(|q| !q.is_empty()) {
            None => Ok(()),
            Some(q) => self.resolve(account, service, &Qualifier::parse(q)?).await.map(|_| ()),
        }
    }

    pub async fn create_trigger(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        body: &[u8],
    ) -> CoreResult<Document> {
        let req: TriggerBody = parse_body(body, &TRIGGER_SHAPE)?;
        let target = self.fresh_function(account, service, function).await?;
        let name = trigger_name(req.trigger_name.as_deref().ok_or_else(|| CoreError::required("TriggerName"))?)?;
        let kind = req.trigger_type.ok_or_else(|| CoreError::required("TriggerType"))?;
        let cfg = config_object(req.trigger_config.ok_or_else(|| CoreError::required(TRIGGER_CONFIG))?)?;
        // HTTP and timer triggers have no event source: FC discards a sourceArn sent for them.
        let source_arn = if kind == "http" || kind == "timer" { None } else { req.source_arn.filter(|a| !a.is_empty()) };
        validate_config(&kind, &cfg, source_arn.as_deref())?;
        self.check_qualifier(account, service, req.qualifier.as_deref()).await?;
        let description = req.description.unwrap_or_default();
        crate::service::max_len("Description", &description, 256)?;
        if kind == "http" {
            if crate::images::non_web_container(&target.config) {
                return Err(CoreError::invalid(format!(
                    "function '{function}' is a custom-container function with webServerMode false: it takes no HTTP requests"
                )));
            }
            let parent = crate::dockey::prefix::function_parts(service.as_str(), function.as_str());
            let existing = self.meta.list_docs(account, KIND, &parent, &parent, 1000).await?;
            if let Some(other) = existing.iter().find(|d| d.body.get("triggerType").and_then(Value::as_str) == Some("http")) {
                return Err(CoreError::invalid(format!(
                    "function '{function}' already has an HTTP trigger '{}'; a function can have only one",
                    other.body.get("triggerName").and_then(Value::as_str).unwrap_or("")
                )));
            }
        }
        let now = self.timestamp();
        let mut body = Map::new();
        body.insert("triggerName".into(), name.clone().into());
        body.insert("triggerType".into(), kind.into());
        body.insert("triggerConfig".into(), Value::Object(cfg));
        body.insert("sourceArn".into(), source_arn.map_or(Value::Null, Value::from));
        body.insert("invocationRole".into(), req.invocation_role.unwrap_or_default().into());
        body.insert("qualifier".into(), req.qualifier.unwrap_or_else(|| "LATEST".into()).into());
        body.insert("description".into(), description.into());
        body.insert("triggerId".into(), uuid::Uuid::new_v4().to_string().into());
        let doc = Document {
            account_id: account.to_owned(),
            kind: KIND,
            key: trigger_key(service, function, &name),
            body: Value::Object(body),
            etag: new_etag(),
            created_time: now.clone(),
            modified_time: now,
        };
        self.meta.create_doc(&doc).await.map_err(|e| match e {
            MetaError::AlreadyExists => CoreError::TriggerAlreadyExists {
                service: service.to_string(),
                function: function.to_string(),
                trigger: name.clone(),
            },
            other => other.into(),
        })?;
        self.forget_http_triggers(account, service, function).await;
        Ok(doc)
    }

    pub async fn get_trigger(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        name: &str,
    ) -> CoreResult<Document> {
        self.trigger_doc(account, service, function, name).await
    }

    pub async fn update_trigger(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        name: &str,
        if_match: Option<&str>,
        body: &[u8],
    ) -> CoreResult<Document> {
        let req: TriggerBody = parse_body(body, &TRIGGER_SHAPE)?;
        let mut doc = self.trigger_doc(account, service, function, name).await?;
        if !etag_matches(if_match, &doc.etag) {
            return Err(CoreError::PreconditionFailed);
        }
        let body = doc.body.as_object_mut().ok_or_else(|| CoreError::Internal("stored trigger is not an object".into()))?;
        let kind = body.get("triggerType").and_then(Value::as_str).unwrap_or("").to_owned();
        if let Some(cfg) = req.trigger_config {
            let cfg = config_object(cfg)?;
            let arn = body.get("sourceArn").and_then(Value::as_str).map(str::to_owned);
            validate_config(&kind, &cfg, arn.as_deref())?;
            body.insert("triggerConfig".into(), Value::Object(cfg));
        }
        if let Some(q) = req.qualifier {
            self.check_qualifier(account, service, Some(&q)).await?;
            body.insert("qualifier".into(), q.into());
        }
        if let Some(role) = req.invocation_role {
            body.insert("invocationRole".into(), role.into());
        }
        if let Some(d) = req.description {
            crate::service::max_len("Description", &d, 256)?;
            body.insert("description".into(), d.into());
        }
        let expected = std::mem::replace(&mut doc.etag, new_etag());
        doc.modified_time = self.timestamp();
        self.meta.update_doc(&doc, &expected).await.map_err(meta_err(|| trigger_not_found(service, function, name)))?;
        self.forget_http_triggers(account, service, function).await;
        Ok(doc)
    }

    pub async fn delete_trigger(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        name: &str,
        if_match: Option<&str>,
    ) -> CoreResult<()> {
        let doc = self.trigger_doc(account, service, function, name).await?;
        if !etag_matches(if_match, &doc.etag) {
            return Err(CoreError::PreconditionFailed);
        }
        self.meta.delete_doc(account, KIND, &doc.key, Some(&doc.etag)).await.map_err(meta_err(|| trigger_not_found(service, function, name)))?;
        self.forget_http_triggers(account, service, function).await;
        Ok(())
    }

    pub async fn list_triggers(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        page: &PageQuery,
    ) -> CoreResult<(Vec<Document>, Option<String>)> {
        self.fresh_function(account, service, function).await?;
        self.list_children(account, KIND, &crate::dockey::prefix::function_parts(service.as_str(), function.as_str()), page).await
    }

    /// The function's HTTP trigger for a qualifier (a trigger without one serves LATEST).
    pub async fn http_trigger(
        &self,
        account: &str,
        service: &ServiceName,
        function: &FunctionName,
        qualifier: &Qualifier,
    ) -> CoreResult<Document> {
        let parent = crate::dockey::prefix::function_parts(service.as_str(), function.as_str());
        let wanted = qualifier.to_string();
        let docs = self.meta.list_docs(account, KIND, &parent, &parent, 1000).await?;
        docs.into_iter()
            .find(|d| {
                d.body.get("triggerType").and_then(Value::as_str) == Some("http")
                    && d.body.get("qualifier").and_then(Value::as_str).filter(|q| !q.is_empty()).unwrap_or("LATEST") == wanted
            })
            .ok_or_else(|| CoreError::TriggerNotFound {
                service: service.to_string(),
                function: function.to_string(),
                trigger: format!("(an HTTP trigger for qualifier {wanted})"),
            })
    }

    /// UpdateFunction may not turn a function with an HTTP trigger into a non-web container (containers.md §4.6).
    pub(crate) async fn check_no_http_trigger(&self, account: &str, service: &ServiceName, function: &FunctionName) -> CoreResult<()> {
        let parent = crate::dockey::prefix::function_parts(service.as_str(), function.as_str());
        let docs = self.meta.list_docs(account, KIND, &parent, &parent, 1000).await?;
        match docs.iter().find(|d| d.body.get("triggerType").and_then(Value::as_str) == Some("http")) {
            Some(d) => Err(CoreError::invalid(format!(
                "function '{function}' has the HTTP trigger '{}': a custom-container function with webServerMode false takes no HTTP requests",
                d.body.get("triggerName").and_then(Value::as_str).unwrap_or("")
            ))),
            None => Ok(()),
        }
    }

    /// DeleteFunction refuses while triggers remain.
    pub(crate) async fn check_no_triggers(&self, account: &str, service: &ServiceName, function: &FunctionName) -> CoreResult<()> {
        let parent = crate::dockey::prefix::function_parts(service.as_str(), function.as_str());
        if self.meta.list_docs(account, KIND, &parent, &parent, 0).await?.is_empty() {
            Ok(())
        } else {
            Err(CoreError::FunctionNotEmpty { function: function.to_string() })
        }
    }
}

/// A trigger that is not there, also when a concurrent delete removed it mid-update.
fn trigger_not_found(service: &ServiceName, function: &FunctionName, name: &str) -> CoreError {
    CoreError::TriggerNotFound { service: service.to_string(), function: function.to_string(), trigger: name.to_owned() }
}

#[cfg(test)]
#[path = "triggers_tests.rs"]
mod tests;
