//! Stateful async invocations (spec §5.1): Get, List (every filter), Stop, ListStatefulAsyncInvocationFunctions,
//! and openfc's own re-drive. The use cases are core's (`openfc_core::stateful`); this is their wire form.

use axum::response::Response;
use openfc_core::asyncq::AsyncStatus;
use openfc_core::stateful::{InvocationFilter, invocation_json};
use openfc_core::usecase::Fc;
use openfc_core::wire::ErrorCode;
use serde_json::json;

use super::endpoint::{Endpoint, Query};
use super::error::ApiError;
use super::handlers::json;

fn invalid(msg: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, msg)
}

fn millis(query: &Query, name: &str) -> Result<Option<i64>, ApiError> {
    query
        .get(name)
        .filter(|v| !v.is_empty())
        .map(|v| v.parse::<i64>().map_err(|_| invalid(format!("{name} must be a time in milliseconds, actual: '{v}'"))))
        .transpose()
}

pub async fn handle(fc: &Fc, acct: &str, endpoint: Endpoint, query: &Query) -> Result<Response, ApiError> {
    use Endpoint::*;
    match endpoint {
        GetStatefulAsyncInvocation { service, function, id, .. } => {
            let ev = fc.get_stateful_invocation(acct, &service, &function, &id).await?;
            Ok(json(invocation_json(&ev, true)))
        }
        StopStatefulAsyncInvocation { service, function, id, .. } => {
            fc.stop_stateful_invocation(acct, &service, &function, &id).await?;
            Ok(json(json!({})))
        }
        RedriveStatefulAsyncInvocation { service, function, id, .. } => {
            let new_id = fc.redrive_stateful_invocation(acct, &service, &function, &id).await?;
            Ok(json(json!({"invocationId": new_id})))
        }
        ListStatefulAsyncInvocationFunctions => {
            let data = fc.list_stateful_functions(acct).await?;
            Ok(json(json!({"data": data})))
        }
        ListStatefulAsyncInvocations { service, function, qualifier } => {
            let limit = match query.get("limit").filter(|v| !v.is_empty()) {
                None => 20,
                Some(v) => match v.parse::<usize>() {
                    Ok(n) if (1..=100).contains(&n) => n,
                    _ => return Err(invalid(format!("Limit is set to an invalid value (allowed: 1 to 100, actual: '{v}')"))),
                },
            };
            let status = match query.get("status").filter(|v| !v.is_empty()) {
                None => None,
                Some(v) => Some(AsyncStatus::parse(v).ok_or_else(|| {
                    invalid(format!(
                        "status is set to an invalid value (allowed: Enqueued | Running | Retrying | Succeeded | Failed | Stopped | Expired, actual: '{v}')"
                    ))
                })?),
            };
            let descending = match query.get("sortOrderByTime").filter(|v| !v.is_empty()) {
                None | Some("desc") => true,
                Some("asc") => false,
                Some(v) => return Err(invalid(format!("SortOrderByTime is set to an invalid value (allowed: asc | desc, actual: '{v}')"))),
            };
            let after = match query.get("nextToken").filter(|v| !v.is_empty()) {
                None => None,
                Some(t) => {
                    let bad = || invalid(format!("nextToken '{t}' is not one this list returned"));
                    let (ms, id) = t.split_once(':').ok_or_else(bad)?;
                    Some((ms.parse::<i64>().map_err(|_| bad())?, id.to_owned()))
                }
            };
            // A qualifier in the path or query narrows the list; none lists every qualifier.
            let q = query.get("qualifier").filter(|q| !q.is_empty()).map(|_| qualifier.to_string());
            let filter = InvocationFilter {
                account: acct.to_owned(),
                service: service.to_string(),
                function: function.to_string(),
                qualifier: q,
                status,
                id_prefix: query.get("invocationIdPrefix").filter(|v| !v.is_empty()).map(str::to_owned),
                started_begin: millis(query, "startedTimeBegin")?,
                started_end: millis(query, "startedTimeEnd")?,
                descending,
                after,
                limit,
            };
            let include_payload = query.get("includePayload").is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let (page, next) = fc.list_stateful_invocations(&filter).await?;
            let items: Vec<_> = page.iter().map(|e| invocation_json(e, include_payload)).collect();
            // FC answers no `invocations` key when nothing matches (spec §6, seen in the Java tests).
            let mut out = if items.is_empty() { json!({}) } else { json!({"invocations": items}) };
            if let Some(n) = next {
                out["nextToken"] = n.into();
            }
            Ok(json(out))
        }
        _ => Err(ApiError::internal("not a stateful async invocation endpoint")),
    }
}
