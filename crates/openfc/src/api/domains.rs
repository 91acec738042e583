//! Requests to custom domains (spec §5.8, issue 8 item 5): a request whose `Host` (port and case ignored) is
//! a custom domain goes to the function its routes pick (`openfc_core::domains`), with the path they rewrite,
//! and then runs exactly as an HTTP-trigger request does (`proxy::forward`: the function's HTTP trigger
//! must exist and its `authType` and `methods` apply, the body is read only then, the caller's credentials
//! never reach the function).
//!
//! The account is the domain's owner (names are global, one owner each). A request is anonymous unless it
//! carries an `Authorization` header, as for HTTP triggers; a signed one must check out and be signed by the
//! owner's key. The host openfc itself is reached at (`--public-url`) and its subdomains are never taken for
//! a custom domain, whatever domains accounts create: the API stays reachable.

use std::sync::Arc;

use axum::body::Body;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::Response;
use openfc_core::domains::{DomainRoutes, RouteMiss, host_name};
use openfc_core::wire::ErrorCode;

use super::App;
use super::error::ApiError;
use super::proxy;

/// The custom domain a request is for, if any (from the node-local cache; see `Fc::custom_domain_for_host`).
pub(super) async fn lookup(app: &App, parts: &Parts) -> Result<Option<Arc<DomainRoutes>>, ApiError> {
    let host = match parts.headers.get(header::HOST) {
        Some(v) => v.to_str().ok(),
        None => parts.uri.host(),
    };
    let Some(host) = host.filter(|h| !is_own_host(&app.public_url, h)) else { return Ok(None) };
    Ok(app.fc.custom_domain_for_host(host).await?)
}

/// The public URL's host, or one of its subdomains (account endpoints such as `{account}.{region}.fc...`).
fn is_own_host(public_url: &str, host: &str) -> bool {
    let authority = public_url.split_once("://").map_or(public_url, |(_, rest)| rest);
    let authority = authority.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    match (host_name(authority), host_name(host)) {
        (Some(own), Some(host)) => host == own || host.strip_suffix(own.as_str()).is_some_and(|sub| sub.ends_with('.')),
        _ => false,
    }
}

pub(super) async fn handle(
    app: &App,
    request_id: &str,
    domain: &DomainRoutes,
    parts: Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let path = parts.uri.path();
    let routed = domain.route(parts.method.as_str(), path, parts.uri.query()).map_err(|miss| match miss {
        RouteMiss::NoRoute => ApiError::new(
            ErrorCode::DomainRouteNotFound,
            format!("no route of custom domain '{}' matches path '{path}'", domain.name),
        ),
        RouteMiss::MethodNotAllowed(allowed) => ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!(
                "method {} is not allowed by the routes of custom domain '{}' for path '{path}' (allowed: {})",
                parts.method,
                domain.name,
                allowed.join(", ")
            ),
        ),
    })?;
    proxy::check_limits(&parts)?;
    let mut caller = proxy::authenticate_if_signed(app, &parts).await?;
    let outcome = async {
        if let Some(c) = &caller
            && c.account != domain.account
        {
            return Err(ApiError::new(
                ErrorCode::AccessDenied,
                format!("the caller is not authorized to invoke the functions of custom domain '{}'", domain.name),
            ));
        }
        let target = proxy::Target {
            account: domain.account.clone(),
            service: routed.service,
            function: routed.function,
            qualifier: routed.qualifier,
            // Through a custom domain every runtime sees the (rewritten) path, not a proxy URI.
            custom_uri: routed.uri.clone(),
            uri: routed.uri,
        };
        proxy::forward(app, request_id, &parts, body, caller.as_mut(), target).await
    }
    .await;
    if let Some(caller) = &mut caller {
        caller.settle(&outcome);
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::is_own_host;

    #[test]
    fn the_public_host_is_never_a_custom_domain() {
        let url = "https://FC.Example.com:8443/base";
        assert!(is_own_host(url, "fc.example.com"));
        assert!(is_own_host(url, "fc.example.com:8443"));
        assert!(is_own_host(url, "123.cn-hangzhou.fc.example.com"));
        assert!(!is_own_host(url, "afc.example.com"));
        assert!(!is_own_host(url, "example.com"));
        assert!(!is_own_host("http://127.0.0.1:9000", "www.example.com"));
        assert!(!is_own_host("http://127.0.0.1:9000", "127.0.0.1:9000"));
    }
}
