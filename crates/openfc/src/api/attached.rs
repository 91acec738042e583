//! Operations on what hangs off services and functions besides configs: layers, tags, reserved capacities, VPC bindings and event sources.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use openfc_core::layers::layer_json;
use openfc_core::page::PageQuery;

use super::download::code_url;
use super::endpoint::Endpoint;
use super::error::ApiError;
use super::handlers::{Ctx, json, list, no_content, page};

pub(super) async fn handle(ctx: &Ctx<'_>, endpoint: Endpoint) -> Result<axum::response::Response, ApiError> {
    let (app, fc, acct, query, body, request_id) = (ctx.app, &ctx.app.fc, ctx.account, ctx.query, ctx.body, ctx.request_id);
    use Endpoint::*;
    Ok(match endpoint {
        CreateLayerVersion { layer } => {
            let rec = fc.create_layer_version(acct, &layer, body.clone()).await?;
            json(layer_json(&app.region, &rec, &code_url(app, &rec.code)))
        }
        ListLayers => {
            let (items, next) = fc.list_layers(acct, &page(query)?, query.get("public"), query.get("official")).await?;
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
            fc.tag_resource(acct, body).await?;
            json(json!({ "requestId": request_id }))
        }
        UntagResource => {
            fc.untag_resource(acct, body).await?;
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
            fc.create_vpc_binding(acct, &service, body).await?;
            json(json!({}))
        }
        ListVpcBindings { service } => json(json!({ "vpcIds": fc.list_vpc_bindings(acct, &service).await? })),
        DeleteVpcBinding { service, vpc_id } => {
            fc.delete_vpc_binding(acct, &service, &vpc_id).await?;
            no_content()
        }
        RegisterEventSource { service, function, qualifier } => {
            json(fc.register_event_source(acct, &service, &function, &qualifier, body).await?)
        }
        ListEventSources { service, function, qualifier } => {
            json(json!({ "eventSources": fc.list_event_sources(acct, &service, &function, &qualifier).await? }))
        }
        DeregisterEventSource { service, function, qualifier, source_arn } => {
            fc.deregister_event_source(acct, &service, &function, &qualifier, &source_arn).await?;
            no_content()
        }
        other => return Err(ApiError::internal(format!("{} dispatched to the wrong family", other.action()))),
    })
}
