//! The per-function configuration operations: provision (with ListInstances), on-demand and async-invoke configs.

use serde_json::json;

use openfc_core::page::PageQuery;

use super::endpoint::Endpoint;
use super::error::ApiError;
use super::handlers::{Ctx, json, list, no_content, page};

pub(super) async fn handle(ctx: &Ctx<'_>, endpoint: Endpoint) -> Result<axum::response::Response, ApiError> {
    let (app, fc, acct, query, if_match, body) = (ctx.app, &ctx.app.fc, ctx.account, ctx.query, ctx.if_match, ctx.body);
    use Endpoint::*;
    Ok(match endpoint {
        PutProvisionConfig { service, function, qualifier } => {
            let mut out = fc.put_provision_config(acct, &service, &function, &qualifier, body).await?;
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
                    openfc_core::CoreError::invalid_value("Limit", format_args!("0 to {max}"), v)
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
            json(fc.put_on_demand_config(acct, &service, &function, &qualifier, if_match, body).await?)
        }
        GetFunctionOnDemandConfig { service, function, qualifier } => {
            json(fc.get_on_demand_config(acct, &service, &function, &qualifier).await?)
        }
        DeleteFunctionOnDemandConfig { service, function, qualifier } => {
            fc.delete_on_demand_config(acct, &service, &function, &qualifier, if_match).await?;
            no_content()
        }
        ListOnDemandConfigs => {
            let (items, next) = fc.list_on_demand_configs(acct, &page(query)?).await?;
            list("configs", items, next)
        }
        PutFunctionAsyncInvokeConfig { service, function, qualifier } => {
            json(fc.put_async_config(acct, &service, &function, &qualifier, body).await?)
        }
        GetFunctionAsyncInvokeConfig { service, function, qualifier } => {
            json(fc.get_async_config(acct, &service, &function, &qualifier).await?)
        }
        DeleteFunctionAsyncInvokeConfig { service, function, qualifier } => {
            fc.delete_async_config(acct, &service, &function, &qualifier).await?;
            no_content()
        }
        ListFunctionAsyncInvokeConfigs { service, function } => {
            let paging = PageQuery::new(query.get("limit"), None, None, query.get("nextToken"))?;
            let (items, next) = fc.list_async_configs(acct, &service, &function, &paging).await?;
            list("configs", items, next)
        }
        other => return Err(ApiError::internal(format!("{} dispatched to the wrong family", other.action()))),
    })
}
