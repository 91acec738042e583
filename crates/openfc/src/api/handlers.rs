//! One arm per FC operation: wire in (names already validated), core use case, wire out.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use openfc_core::configs::domain_json;
use openfc_core::function::function_json;
use openfc_core::layers::layer_json;
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
    let Call { version, request_id, endpoint, account, query, headers, body } = call;
    let config_as_string = version == ApiVersion::V2021;
    let fc = &app.fc;
    let acct = account.as_str();
    // One normal form for every operation: unquoted, and `*` (any ETag) is no condition at all. The SQL
    // compare-and-set paths would otherwise take `*` or a quoted value literally.
    let if_match = header(headers, "if-match").map(|m| m.trim().trim_matches('"')).filter(|m| *m != "*");
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
                    ApiError::new(openfc_core::wire::ErrorCode::InvalidArgument, format!("limit must be 1 to 10000, actual: '{l}'"))
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
        PutProvisionConfig { service, function, qualifier } => {
            let mut out = fc.put_provision_config(acct, &service, &function, &qualifier, &body).await?;
            out["current"] = app.fc.provisioned_now(acct, &service, &function, &qualifier).await.into();
            json(out)
        }
        GetProvisionConfig { service, function, qualifier } => {
            let mut out = fc.get_provision_config(acct, &service, &function, &qualifier).await?;
            out["current"] = app.fc.provisioned_now(acct, &service, &function, &qualifier).await.into();
            json(out)
        }
        ListInstances { service, function, qualifier } => {
            let max = openfc_core::instances::MAX_LIMIT;
            let limit = match query.get("limit").filter(|v| !v.is_empty()) {
                None => max,
                Some(v) => v.parse::<usize>().ok().filter(|n| *n <= max).ok_or_else(|| {
                    openfc_core::CoreError::invalid(format!("limit must be an integer from 0 to {max}, actual: '{v}'"))
                })?,
            };
            let ids = query.list("instanceIds");
            let found = fc.list_instances(acct, &service, &function, &qualifier, &ids, limit).await?;
            let items: Vec<_> = found.iter().map(|i| json!({"instanceId": i.id, "versionId": i.version})).collect();
            json(json!({ "instances": items }))
        }
        ListProvisionConfigs => {
            let paging = PageQuery::new(query.get("limit"), None, None, query.get("nextToken"))?;
            let (items, next) =
                fc.list_provision_configs(acct, query.get("serviceName"), query.get("qualifier"), &paging).await?;
            list("provisionConfigs", items, next)
        }
        PutFunctionOnDemandConfig { service, function, qualifier } => {
            json(fc.put_on_demand_config(acct, &service, &function, &qualifier, if_match, &body).await?)
        }
        GetFunctionOnDemandConfig { service, function, qualifier } => {
            json(fc.get_on_demand_config(acct, &service, &function, &qualifier).await?)
        }
        DeleteFunctionOnDemandConfig { service, function, qualifier } => {
            fc.delete_on_demand_config(acct, &service, &function, &qualifier, if_match).await?;
            no_content()
        }
        ListOnDemandConfigs => {
            let (items, next) = fc.list_on_demand_configs(acct, &page(&query)?).await?;
            list("configs", items, next)
        }
        PutFunctionAsyncInvokeConfig { service, function, qualifier } => {
            json(fc.put_async_config(acct, &service, &function, &qualifier, &body).await?)
        }
        GetFunctionAsyncInvokeConfig { service, function, qualifier } => {
            json(fc.get_async_config(acct, &service, &function, &qualifier).await?)
        }
        DeleteFunctionAsyncInvokeConfig { service, function, qualifier } => {
            fc.delete_async_config(acct, &service, &function, &qualifier).await?;
            no_content()
        }
        e @ (ListStatefulAsyncInvocations { .. }
        | GetStatefulAsyncInvocation { .. }
        | StopStatefulAsyncInvocation { .. }
        | RedriveStatefulAsyncInvocation { .. }
        | ListStatefulAsyncInvocationFunctions) => super::stateful::handle(fc, acct, e, &query).await?,
        ListFunctionAsyncInvokeConfigs { service, function } => {
            let paging = PageQuery::new(query.get("limit"), None, None, query.get("nextToken"))?;
            let (items, next) = fc.list_async_configs(acct, &service, &function, &paging).await?;
            list("configs", items, next)
        }
        CreateLayerVersion { layer } => {
            let rec = fc.create_layer_version(acct, &layer, body).await?;
            json(layer_json(&app.region, &rec, &code_url(app, &rec.code)))
        }
        ListLayers => {
            let (items, next) = fc.list_layers(acct, &page(&query)?, query.get("public"), query.get("official")).await?;
            list("layers", items.iter().map(|l| layer_json(&app.region, l, &code_url(app, &l.code))).collect(), next)
        }
        ListLayerVersions { layer } => {
            let (items, next) =
                fc.list_layer_versions(acct, &layer, query.get("limit"), query.get("startVersion")).await?;
            let mut out = serde_json::Map::new();
            out.insert(
                "layers".into(),
                items.iter().map(|l| layer_json(&app.region, l, &code_url(app, &l.code))).collect(),
            );
            if let Some(v) = next {
                out.insert("nextVersion".into(), v.into());
            }
            json(Value::Object(out))
        }
        GetLayerVersion { layer, version } => {
            let rec = fc.get_layer_version(acct, &layer, &version).await?;
            json(layer_json(&app.region, &rec, &code_url(app, &rec.code)))
        }
        GetLayerVersionByArn { arn } => {
            let rec = fc.get_layer_version_by_arn(acct, &arn).await?;
            json(layer_json(&app.region, &rec, &code_url(app, &rec.code)))
        }
        DeleteLayerVersion { layer, version } => {
            fc.delete_layer_version(acct, &layer, &version).await?;
            no_content()
        }
        PutLayerAcl { layer } => {
            fc.put_layer_acl(acct, &layer, query.get("public")).await?;
            StatusCode::OK.into_response()
        }
        TagResource => {
            fc.tag_resource(acct, &body).await?;
            json(json!({ "requestId": request_id }))
        }
        UntagResource => {
            fc.untag_resource(acct, &body).await?;
            json(json!({ "requestId": request_id }))
        }
        GetResourceTags => json(fc.get_resource_tags(acct, query.get("resourceArn")).await?),
        ListTaggedResources => {
            let paging = PageQuery::new(query.get("limit"), None, None, query.get("nextToken"))?;
            let (items, next) = fc.list_tagged_resources(acct, &paging).await?;
            list("resources", items, next)
        }
        ListReservedCapacities => {
            // Checked like the other `limit,nextToken` lists, then always empty: openfc reserves nothing.
            PageQuery::new(query.get("limit"), None, None, query.get("nextToken"))?;
            list("reservedCapacities", Vec::new(), None)
        }
        CreateVpcBinding { service } => {
            fc.create_vpc_binding(acct, &service, &body).await?;
            json(json!({}))
        }
        ListVpcBindings { service } => json(json!({ "vpcIds": fc.list_vpc_bindings(acct, &service).await? })),
        DeleteVpcBinding { service, vpc_id } => {
            fc.delete_vpc_binding(acct, &service, &vpc_id).await?;
            no_content()
        }
        RegisterEventSource { service, function, qualifier } => {
            json(fc.register_event_source(acct, &service, &function, &qualifier, &body).await?)
        }
        ListEventSources { service, function, qualifier } => {
            json(json!({ "eventSources": fc.list_event_sources(acct, &service, &function, &qualifier).await? }))
        }
        DeregisterEventSource { service, function, qualifier, source_arn } => {
            fc.deregister_event_source(acct, &service, &function, &qualifier, &source_arn).await?;
            no_content()
        }
    })
}
