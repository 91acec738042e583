//! `GET /console/api/charts[?service=S&function=F]`: this node's time series (`series`) for the signed-in
//! key. A function's series is shown only when the key may `fc:GetFunction` it and the function is the
//! caller's: the invoker's counters name the service and function but not the account, so a series without an
//! account is matched to the caller's function of that name (two accounts with a same-named function on one
//! node would see their sum). Cold-start phases, instance counts and the async queue depth are node-wide
//! figures without names.

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::response::Response;
use openfc_core::names::{FunctionName, Qualifier, ServiceName};
use serde_json::json;

use super::series::{BUCKET_SECS, BUCKETS, SERIES, bucket_now};
use crate::api::App;
use crate::api::endpoint::Query;
use crate::api::error::ApiError;
use crate::api::session::{SignedIn, signed_in};

/// Whether the caller may see `service/function`'s series.
async fn visible(app: &App, signed: &SignedIn, account: &str, service: &str, function: &str) -> bool {
    let arn = format!("acs:fc:{}:{}:services/{service}/functions/{function}", app.region, signed.session.account);
    if !signed.allows("GetFunction", &arn) {
        return false;
    }
    if !account.is_empty() {
        return account == signed.session.account;
    }
    let (Ok(s), Ok(f)) = (ServiceName::parse(service), FunctionName::parse(function)) else { return false };
    app.fc.get_function(&signed.session.account, &s, &f, &Qualifier::Latest).await.is_ok()
}

pub async fn serve(app: &App, parts: &Parts) -> Result<Response, ApiError> {
    let signed = signed_in(app, &parts.headers, &Method::GET).await?;
    let query = Query::parse(parts.uri.query());
    let (want_service, want_function) = (query.get("service"), query.get("function"));
    let now = bucket_now();
    let mut functions = Vec::new();
    for f in SERIES.functions(now) {
        if want_service.is_some_and(|s| s != f.key.service) || want_function.is_some_and(|n| n != f.key.function) {
            continue;
        }
        if f.points.is_empty() || !visible(app, &signed, &f.key.account, &f.key.service, &f.key.function).await {
            continue;
        }
        functions.push(json!({"service": f.key.service, "function": f.key.function, "points": f.points}));
    }
    let cold: serde_json::Map<String, serde_json::Value> =
        SERIES.cold_starts(now).into_iter().map(|(phase, points)| (phase, json!(points))).collect();
    let body = json!({
        "node": app.fc.cluster.id.to_string(),
        "bucketSeconds": BUCKET_SECS,
        "buckets": BUCKETS,
        "now": now * BUCKET_SECS,
        "functions": functions,
        "coldStartPhases": cold,
        "instances": SERIES.instance_counts(now),
        "asyncQueueDepth": SERIES.queue_depths(now),
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from(body.to_string()))
        .map_err(|e| ApiError::internal(format!("building a response: {e}")))
}
