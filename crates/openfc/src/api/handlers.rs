//! One arm per FC operation: wire in (names already validated), core use case, wire out.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use openfc_core::configs::domain_json;
use openfc_core::function::function_json;
use openfc_core::triggers::trigger_json;
use openfc_core::versions::{alias_json, version_json};
use openfc_core::page::PageQuery;
use openfc_core::service::service_json;
use serde_json::{Value, json};

use super::App;
use super::download::code_url;
use super::endpoint::{ApiVersion, Endpoint, Query};
use super::error::ApiError;

pub struct Call<'a> {
    /// triggerConfig is an object on 2016-08-15 and a JSON string on 2021-04-06.
    pub version: ApiVersion,
    pub request_id: &'a str,
    pub endpoint: Endpoint,
    pub account: String,
    pub query: Query,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
}

/// What the operation families' handlers (`configs`, `attached`) share with `handle`.
pub(super) struct Ctx<'a> {
    pub app: &'a App,
    pub account: &'a str,
    pub query: &'a Query,
    pub if_match: Option<&'a str>,
    pub body: &'a Bytes,
    pub request_id: &'a str,
}

pub fn json(value: Value) -> Response {
    let mut resp = value.to_string().into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp
}

pub(super) fn with_etag(mut resp: Response, etag: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

pub(super) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(super) fn page(query: &Query) -> Result<PageQuery, ApiError> {
    Ok(PageQuery::new(query.get("limit"), query.get("prefix"), query.get("startKey"), query.get("nextToken"))?)
}

pub(super) fn list(key: &str, items: Vec<Value>, next: Option<String>) -> Response {
    let mut out = serde_json::Map::new();
    out.insert(key.into(), Value::Array(items));
    if let Some(token) = next {
        out.insert("nextToken".into(), token.into());
    }
    json(Value::Object(out))
}

pub async fn handle(app: &App, call: Call<'_>) -> Result<Response, ApiError> {
    let Call { version, request_id, endpoint, account, query, headers, body } = call;
    let config_as_string = version == ApiVersion::V2021;
    let fc = &app.fc;
    let acct = account.as_str();
    // One normal form for every operation: unquoted, and `*` (any ETag) is no condition at all. The SQL
    // compare-and-set paths would otherwise take `*` or a quoted value literally.
    let if_match = header(headers, "if-match").map(|m| m.trim().trim_matches('"')).filter(|m| *m != "*");
    let checksum = header(headers, "x-fc-code-checksum");
    let ctx = Ctx { app, account: acct, query: &query, if_match, body: &body, request_id };
    use Endpoint::*;
    Ok(match endpoint {
        // A websocket session, upgraded before the body is read (`super::exec`).
        InstanceExec { .. } => return Err(ApiError::internal("InstanceExec reached the request/response handlers")),
        GetAccountConfigs => json(json!({
            "codeSizeLimit": fc.limits.max_size,
            "unzippedCodeSizeLimit": fc.limits.max_unzipped,
            "codeEntriesLimit": fc.limits.max_entries,
        })),
        GetTempCodeBucketToken => {
            return Err(ApiError::new(
                openfc_core::wire::ErrorCode::PathNotSupported,
                format!(
                    "the withoutCodeLimit upload path stores the package in Alibaba Cloud OSS, which openfc does not use: \
                     send the zip in the request instead (code.zipFile; this server accepts packages up to {} bytes, \
                     --max-code-size), or put it in openfc's OSS-compatible store and name it with \
                     code.ossBucketName/ossObjectName",
                    fc.limits.max_size
                ),
            ));
        }
        GetAccountSettings => json(json!({
            "availableAZs": [format!("{}-a", app.region)],
            "defaultRole": format!("acs:ram::{acct}:role/aliyunfcdefaultrole"),
        })),
        CreateService => {
            let rec = fc.create_service(acct, &body).await?;
            with_etag(json(service_json(&rec)), &rec.etag)
        }
        ListServices => {
            let filters = query.tag_filters();
            let (items, next) = if filters.is_empty() {
                fc.list_services(acct, &page(&query)?).await?
            } else {
                fc.list_services_tagged(acct, &page(&query)?, &filters).await?
            };
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
            with_etag(json(fc.function_with_image_state(&rec).await?), &rec.etag)
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
        InvokeFunction { service, function, qualifier } => {
            return super::invoke::invoke(app, acct, request_id, &service, &function, &qualifier, headers, body).await;
        }
        GetFunctionLogs { service, function } => {
            fc.get_function(acct, &service, &function, &openfc_core::names::Qualifier::Latest).await?;
            let limit = match query.get("limit") {
                None | Some("") => 100,
                Some(l) => l.parse::<usize>().ok().filter(|n| (1..=10_000).contains(n)).ok_or_else(|| {
                    openfc_core::CoreError::invalid_value("Limit", "1 to 10000", l)
                })?,
            };
            json(json!({ "lines": app.invoker.function_logs(acct, service.as_str(), function.as_str(), limit).await }))
        }
        PublishServiceVersion { service } => json(version_json(&fc.publish_version(acct, &service, if_match, &body).await?)),
        ListServiceVersions { service } => {
            let start = query.get("nextToken").filter(|t| !t.is_empty()).or(query.get("startKey"));
            let (items, next, direction) =
                fc.list_versions(acct, &service, query.get("limit"), start, query.get("direction")).await?;
            let mut out = serde_json::Map::new();
            out.insert("versions".into(), items.iter().map(version_json).collect());
            if let Some(token) = next {
                out.insert("nextToken".into(), token.into());
            }
            out.insert("direction".into(), direction.into());
            json(Value::Object(out))
        }
        DeleteServiceVersion { service, version } => {
            fc.delete_version(acct, &service, &version).await?;
            no_content()
        }
        CreateAlias { service } => {
            let doc = fc.create_alias(acct, &service, &body).await?;
            with_etag(json(alias_json(&doc)), &doc.etag)
        }
        ListAliases { service } => {
            let (items, next) = fc.list_aliases(acct, &service, &page(&query)?).await?;
            list("aliases", items.iter().map(alias_json).collect(), next)
        }
        GetAlias { service, alias } => {
            let doc = fc.get_alias(acct, &service, &alias).await?;
            with_etag(json(alias_json(&doc)), &doc.etag)
        }
        UpdateAlias { service, alias } => {
            let doc = fc.update_alias(acct, &service, &alias, if_match, &body).await?;
            with_etag(json(alias_json(&doc)), &doc.etag)
        }
        DeleteAlias { service, alias } => {
            fc.delete_alias(acct, &service, &alias, if_match).await?;
            no_content()
        }
        CreateTrigger { service, function } => {
            let doc = fc.create_trigger(acct, &service, &function, &body).await?;
            with_etag(json(trigger_json(&doc, config_as_string, &app.public_url)), &doc.etag)
        }
        ListTriggers { service, function } => {
            let (items, next) = fc.list_triggers(acct, &service, &function, &page(&query)?).await?;
            list("triggers", items.iter().map(|d| trigger_json(d, config_as_string, &app.public_url)).collect(), next)
        }
        GetTrigger { service, function, trigger } => {
            let doc = fc.get_trigger(acct, &service, &function, &trigger).await?;
            with_etag(json(trigger_json(&doc, config_as_string, &app.public_url)), &doc.etag)
        }
        UpdateTrigger { service, function, trigger } => {
            let doc = fc.update_trigger(acct, &service, &function, &trigger, if_match, &body).await?;
            with_etag(json(trigger_json(&doc, config_as_string, &app.public_url)), &doc.etag)
        }
        DeleteTrigger { service, function, trigger } => {
            fc.delete_trigger(acct, &service, &function, &trigger, if_match).await?;
            no_content()
        }
        CreateCustomDomain => json(domain_json(&fc.create_custom_domain(acct, &body).await?)),
        ListCustomDomains => {
            let (items, next) = fc.list_custom_domains(acct, &page(&query)?).await?;
            list("customDomains", items.iter().map(domain_json).collect(), next)
        }
        GetCustomDomain { domain } => json(domain_json(&fc.get_custom_domain(acct, &domain).await?)),
        UpdateCustomDomain { domain } => json(domain_json(&fc.update_custom_domain(acct, &domain, &body).await?)),
        DeleteCustomDomain { domain } => {
            fc.delete_custom_domain(acct, &domain).await?;
            no_content()
        }
        e @ (PutProvisionConfig { .. }
        | GetProvisionConfig { .. }
        | ListInstances { .. }
        | ListProvisionConfigs
        | PutFunctionOnDemandConfig { .. }
        | GetFunctionOnDemandConfig { .. }
        | DeleteFunctionOnDemandConfig { .. }
        | ListOnDemandConfigs
        | PutFunctionAsyncInvokeConfig { .. }
        | GetFunctionAsyncInvokeConfig { .. }
        | DeleteFunctionAsyncInvokeConfig { .. }
        | ListFunctionAsyncInvokeConfigs { .. }) => super::configs::handle(&ctx, e).await?,
        e @ (ListStatefulAsyncInvocations { .. }
        | GetStatefulAsyncInvocation { .. }
        | StopStatefulAsyncInvocation { .. }
        | RedriveStatefulAsyncInvocation { .. }
        | ListStatefulAsyncInvocationFunctions) => super::stateful::handle(fc, acct, e, &query).await?,
        e @ (CreateLayerVersion { .. }
        | ListLayers
        | ListLayerVersions { .. }
        | GetLayerVersion { .. }
        | GetLayerVersionByArn { .. }
        | DeleteLayerVersion { .. }
        | PutLayerAcl { .. }
        | TagResource
        | UntagResource
        | GetResourceTags
        | ListTaggedResources
        | ListReservedCapacities
        | CreateVpcBinding { .. }
        | ListVpcBindings { .. }
        | DeleteVpcBinding { .. }
        | RegisterEventSource { .. }
        | ListEventSources { .. }
        | DeregisterEventSource { .. }) => super::attached::handle(&ctx, e).await?,
    })
}
