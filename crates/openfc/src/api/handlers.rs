//! One arm per FC operation: wire in (names already validated), core use case, wire out.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use openfc_core::function::function_json;
use openfc_core::page::PageQuery;
use openfc_core::service::service_json;
use serde_json::{Value, json};

use super::App;
use super::download::code_url;
use super::endpoint::{ApiVersion, Endpoint, Query};
use super::error::ApiError;

pub struct Call<'a> {
    #[allow(dead_code)] // triggerConfig's shape differs by version (later operations)
    pub version: ApiVersion,
    pub endpoint: Endpoint,
    pub account: String,
    pub query: Query,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
}

pub fn json(value: Value) -> Response {
    let mut resp = value.to_string().into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp
}

fn with_etag(mut resp: Response, etag: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn page(query: &Query) -> Result<PageQuery, ApiError> {
    Ok(PageQuery::new(query.get("limit"), query.get("prefix"), query.get("startKey"), query.get("nextToken"))?)
}

fn list(key: &str, items: Vec<Value>, next: Option<String>) -> Response {
    let mut out = serde_json::Map::new();
    out.insert(key.into(), Value::Array(items));
    if let Some(token) = next {
        out.insert("nextToken".into(), token.into());
    }
    json(Value::Object(out))
}

pub async fn handle(app: &App, call: Call<'_>) -> Result<Response, ApiError> {
    let Call { endpoint, account, query, headers, body, .. } = call;
    let fc = &app.fc;
    let acct = account.as_str();
    let if_match = header(headers, "if-match");
    let checksum = header(headers, "x-fc-code-checksum");
    use Endpoint::*;
    Ok(match endpoint {
        GetAccountSettings => json(json!({
            "availableAZs": [format!("{}-a", app.region)],
            "defaultRole": format!("acs:ram::{acct}:role/aliyunfcdefaultrole"),
        })),
        CreateService => {
            let rec = fc.create_service(acct, &body).await?;
            with_etag(json(service_json(&rec)), &rec.etag)
        }
        ListServices => {
            let (items, next) = fc.list_services(acct, &page(&query)?).await?;
            list("services", items.iter().map(service_json).collect(), next)
        }
        GetService { service, qualifier } => {
            let rec = fc.get_service(acct, &service, &qualifier).await?;
            with_etag(json(service_json(&rec)), &rec.etag)
        }
        UpdateService { service } => {
            let rec = fc.update_service(acct, &service, if_match, &body).await?;
            with_etag(json(service_json(&rec)), &rec.etag)
        }
        DeleteService { service } => {
            fc.delete_service(acct, &service, if_match).await?;
            no_content()
        }
        CreateFunction { service } => {
            let rec = fc.create_function(acct, &service, body, checksum).await?;
            with_etag(json(function_json(&rec)), &rec.etag)
        }
        ListFunctions { service, qualifier } => {
            let (items, next) = fc.list_functions(acct, &service, &qualifier, &page(&query)?).await?;
            list("functions", items.iter().map(function_json).collect(), next)
        }
        GetFunction { service, function, qualifier } => {
            let rec = fc.get_function(acct, &service, &function, &qualifier).await?;
            with_etag(json(function_json(&rec)), &rec.etag)
        }
        UpdateFunction { service, function } => {
            let rec = fc.update_function(acct, &service, &function, if_match, body, checksum).await?;
            with_etag(json(function_json(&rec)), &rec.etag)
        }
        DeleteFunction { service, function } => {
            fc.delete_function(acct, &service, &function, if_match).await?;
            no_content()
        }
        GetFunctionCode { service, function, qualifier } => {
            let code = fc.get_function_code(acct, &service, &function, &qualifier).await?;
            json(json!({ "url": code_url(app, &code), "checksum": code.checksum.to_string() }))
        }
    })
}
