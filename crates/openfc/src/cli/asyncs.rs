//! `openfc async list|get|stop|redrive` over the HTTP API: the stateful async invocation operations
//! (ListStatefulAsyncInvocations, Get..., Stop..., and openfc's RedriveStatefulAsyncInvocation).

use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Call, Client, seg};
use super::output::{self, Column, Output};
use super::{CliError, ConnArgs, split_target};
use crate::asynccli::AsyncAction;

/// ListStatefulAsyncInvocations' largest page.
const PAGE: usize = 100;

const INVOCATION_COLUMNS: &[Column] = &[
    Column { heading: "INVOCATION ID", field: "invocationId" },
    Column { heading: "STATUS", field: "status" },
    Column { heading: "QUALIFIER", field: "qualifier" },
    Column { heading: "STARTED", field: "started" },
    Column { heading: "DURATION MS", field: "durationMs" },
    Column { heading: "RETRIES", field: "alreadyRetriedTimes" },
    Column { heading: "ERROR", field: "invocationErrorMessage" },
];

pub async fn run(conn: ConnArgs, action: AsyncAction, out: Output) -> Result<(), CliError> {
    let client = Client::new(&conn)?;
    match action {
        AsyncAction::List { target, status, limit } => {
            let items = list(&client, &target, status, limit.max(1)).await?;
            match out {
                Output::Json => output::json(&json!({ "invocations": items })),
                Output::Table => {
                    let rows: Vec<Value> = items.into_iter().map(with_started).collect();
                    output::stdout(&output::table(&rows, INVOCATION_COLUMNS));
                }
            }
        }
        AsyncAction::Get { target, id } => {
            let ev = client.json(Call::new(Method::GET, invocation_path(&target, &id)?)).await?;
            match out {
                Output::Json => output::json(&ev),
                Output::Table => output::stdout(&output::details(&with_started(ev))),
            }
        }
        AsyncAction::Stop { target, id } => {
            let answer = client.json(Call::new(Method::PUT, invocation_path(&target, &id)?)).await?;
            match out {
                Output::Json => output::json(&answer),
                Output::Table => output::stdout(&format!("stopped {id}\n")),
            }
        }
        AsyncAction::Redrive { target, id } => {
            let path = format!("{}/redrive", invocation_path(&target, &id)?);
            let answer = client.json(Call::new(Method::POST, path)).await?;
            match out {
                Output::Json => output::json(&answer),
                Output::Table => output::stdout(&format!("{}\n", answer["invocationId"].as_str().unwrap_or_default())),
            }
        }
    }
    Ok(())
}

fn invocations_path(target: &str) -> Result<String, CliError> {
    let (service, function) = split_target(target)?;
    Ok(format!("/services/{}/functions/{}/stateful-async-invocations", seg(service), seg(function)))
}

fn invocation_path(target: &str, id: &str) -> Result<String, CliError> {
    Ok(format!("{}/{}", invocations_path(target)?, seg(id)))
}

/// The newest `limit` invocations, following `nextToken` over pages of at most [`PAGE`].
async fn list(client: &Client, target: &str, status: Option<String>, limit: usize) -> Result<Vec<Value>, CliError> {
    let path = invocations_path(target)?;
    let mut items: Vec<Value> = Vec::new();
    let mut token: Option<String> = None;
    while items.len() < limit {
        let mut call = Call::new(Method::GET, path.clone());
        call.query.push(("limit", (limit - items.len()).min(PAGE).to_string()));
        call.query.push(("sortOrderByTime", "desc".into()));
        if let Some(s) = &status {
            call.query.push(("status", s.clone()));
        }
        if let Some(t) = &token {
            call.query.push(("nextToken", t.clone()));
        }
        let page = client.json(call).await?;
        // FC answers no `invocations` key when nothing matches.
        items.extend(page["invocations"].as_array().into_iter().flatten().cloned());
        match page["nextToken"].as_str().filter(|t| !t.is_empty()) {
            Some(t) if token.as_deref() != Some(t) => token = Some(t.to_owned()),
            _ => break,
        }
    }
    items.truncate(limit);
    Ok(items)
}

/// Adds `started`: `startedTime` (milliseconds since the epoch) as an RFC 3339 time, for people.
fn with_started(mut item: Value) -> Value {
    let text = item["startedTime"]
        .as_i64()
        .and_then(|ms| time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok());
    if let (Some(text), Some(map)) = (text, item.as_object_mut()) {
        map.insert("started".into(), text.into());
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_times_read_for_people() {
        let item = with_started(json!({"invocationId": "a", "startedTime": 1_700_000_000_123_i64}));
        assert_eq!(item["started"], "2023-11-14T22:13:20.123Z");
        assert!(with_started(json!({"invocationId": "b"})).get("started").is_none());
    }
}
