//! The HTTP face of openfc: one pipeline for every FC API request — request id, endpoint parse,
//! authentication from the head, body (bounded, checked against the signed hash header), handler, render —
//! plus the code download route, `/health` and `/metrics`. The body of a request is read only once its
//! signature has checked out. Handlers never build status codes for errors: they return `ApiError`,
//! rendered in one place. Before any of that, a request whose `Host` is a custom domain is taken aside and
//! routed to a function (`domains`), whatever its path.

mod attached;
mod auth;
mod configs;
mod domains;
mod exec;
pub mod download;
pub mod endpoint;
pub mod error;
mod handlers;
pub mod invoke;
pub(crate) mod session;
mod proxy;
mod stateful;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::BytesMut;
use http_body_util::BodyExt;
use metrics_exporter_prometheus::PrometheusHandle;
use openfc_core::usecase::Fc;
use openfc_core::wire::ErrorCode;

use crate::keys::Keyring;
use endpoint::{ParseError, Query};
use error::ApiError;

/// `X-Fc-Request-Id`, on every response.
pub(crate) const X_FC_REQUEST_ID: HeaderName = HeaderName::from_static("x-fc-request-id");

/// A new request id: a random (version 4) UUID, hyphenated and lower-case, as FC's. Drawn from the thread's
/// generator (ChaCha, seeded from the OS), not from the OS for each request.
fn new_request_id() -> String {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid().hyphenated().to_string()
}

/// Whether a `Host` value could name a custom domain: false for what `domains::host_name` never takes for one
/// (IP addresses, `localhost`, no alphabetic top-level label), found without allocating, so requests to the
/// API's own address skip the lookup.
fn may_be_domain(host: &str) -> bool {
    let host = host.trim();
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        Some(_) => return false,
        None => host,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    match name.rsplit_once('.') {
        Some((_, tld)) => tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()),
        None => false,
    }
}

/// Everything a request needs, shared by all of them.
pub struct App {
    pub fc: std::sync::Arc<Fc>,
    /// What the invoker reports (`/health`, logs); running functions goes through `fc` and core's port.
    pub invoker: std::sync::Arc<dyn crate::node::InvokerStatus>,
    /// The account anonymous HTTP-trigger requests reach (the embedded single-account default).
    pub default_account: String,
    pub keyring: Keyring,
    pub region: String,
    pub public_url: String,
    pub url_key: [u8; 32],
    pub code_url_ttl: u64,
    /// Largest request body accepted: a base64 package at the size limit, plus room for the rest.
    pub max_body: usize,
    pub metrics: PrometheusHandle,
    /// The bearer token `/metrics` requires (it names every function); `None`: only loopback clients may read it.
    pub metrics_token: Option<String>,
    pub health: serde_json::Value,
    /// The web console's session key and lifetime (`crate::console`).
    pub console: crate::console::Settings,
}

/// The routes: `/health` and `/metrics` (a router of their own, which also answers their HEAD and refused
/// methods), everything else to [`entry`]; a request to a custom domain goes to its routes first, whatever its
/// path. One handler in front of them rather than a middleware layer: most requests are API calls, which
/// then pass no routing table and no boxed middleware future.
pub fn router(app: Arc<App>) -> Router {
    let own = Router::new().route("/health", get(health)).route("/metrics", get(metrics)).with_state(app.clone());
    Router::new()
        .fallback(move |State(app): State<Arc<App>>, req: Request| dispatch(app, own.clone(), req))
        .with_state(app)
}

async fn dispatch(app: Arc<App>, own: Router, req: Request) -> Response {
    let host = match req.headers().get(header::HOST) {
        Some(v) => v.to_str().ok(),
        None => req.uri().host(),
    };
    let req = if host.is_some_and(may_be_domain) {
        match custom_domain(&app, req).await {
            Ok(resp) => return resp,
            Err(req) => req,
        }
    } else {
        req
    };
    if matches!(req.uri().path(), "/health" | "/metrics") {
        return match tower::ServiceExt::oneshot(own, req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        };
    }
    entry(app, req).await
}

/// Requests to a custom domain go to its routes (answered here); every other request is handed back, on to
/// the API, downloads, `/health` and `/metrics`. The host lookup is cached (`Fc::custom_domain_for_host`);
/// when it fails, `/health` and `/metrics` still answer and other requests get an internal error.
async fn custom_domain(app: &App, req: Request) -> Result<Response, Request> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let found = match domains::lookup(app, &parts).await {
        Ok(Some(domain)) => Ok(domain),
        Err(e) if !matches!(parts.uri.path(), "/health" | "/metrics") => Err(e),
        Ok(None) | Err(_) => return Err(Request::from_parts(parts, body)),
    };
    let request_id = new_request_id();
    let path = parts.uri.path().to_owned();
    let result = match found {
        Ok(domain) => domains::handle(app, &request_id, &domain, parts, body).await,
        Err(e) => Err(e),
    };
    Ok(finish(&request_id, started, "CustomDomain", &path, result))
}

async fn health(State(app): State<Arc<App>>) -> Response {
    let mut health = app.health.clone();
    let (alive, busy) = app.invoker.instance_counts();
    health["isolation"] = app.invoker.isolation();
    health["instances"] = serde_json::json!({"alive": alive, "busy": busy, "idle": alive - busy});
    health["warm_sandboxes"] = serde_json::json!(app.invoker.warm_sandboxes());
    health["prestarted_runtimes"] = app.invoker.prestarted_health();
    health["async"] = app.fc.async_health().await;
    health["node"] = serde_json::json!({"id": app.fc.cluster.id, "liveNodes": app.fc.cluster.live().len()});
    if let Some(store) = app.invoker.image_store() {
        let usage = store.usage();
        health["images"] = serde_json::json!({
            "images": usage.trees,
            "bytes": usage.tree_bytes + usage.blob_bytes,
            "blobs": usage.blobs,
            "blob_bytes": usage.blob_bytes,
            "pulls_in_flight": app.fc.images.as_ref().map_or(0, |i| i.in_flight()),
        });
    }
    with_request_id(handlers::json(health))
}

async fn metrics(State(app): State<Arc<App>>, req: Request) -> Response {
    if let Err(why) = metrics_allowed(&app, &req) {
        let request_id = new_request_id();
        let mut resp = ApiError::new(ErrorCode::AccessDenied, why).render(&request_id);
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            resp.headers_mut().insert(X_FC_REQUEST_ID, v);
        }
        return resp;
    }
    let mut resp = app.metrics.render().into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    with_request_id(resp)
}

/// Who may read `/metrics`: with a token configured, whoever presents it (`Authorization: Bearer`); without,
/// clients on this host only. The series name every function of every account.
fn metrics_allowed(app: &App, req: &Request) -> Result<(), &'static str> {
    match &app.metrics_token {
        Some(token) => {
            let given = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
            let ok = given.is_some_and(|g| constant_time_eq(g.trim().as_bytes(), token.as_bytes()));
            if ok { Ok(()) } else { Err("/metrics needs the metrics token: Authorization: Bearer TOKEN (--metrics-token)") }
        }
        None => {
            let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
            // In-process tests have no peer: they are this host.
            if peer.is_none_or(|ip| ip.is_loopback()) {
                Ok(())
            } else {
                Err("/metrics is served to this host's own clients only unless --metrics-token is set")
            }
        }
    }
}

/// A comparison whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `/health` and `/metrics` carry a request id like every other response.
fn with_request_id(mut resp: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&new_request_id()) {
        resp.headers_mut().insert(X_FC_REQUEST_ID, v);
    }
    resp
}

/// Every request but /health and /metrics comes through here.
async fn entry(app: Arc<App>, req: Request) -> Response {
    let request_id = new_request_id();
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let sent_body = parts.headers.contains_key(header::TRANSFER_ENCODING)
        || parts.headers.get(header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0");
    let (operation, result) = match path.strip_prefix(download::PREFIX) {
        None if crate::console::owns(&path) => crate::console::handle(&app, parts, body).await,
        Some(key) => {
            let query = Query::parse(parts.uri.query());
            ("DownloadCode", download::serve(&app, &parts.method, key, &query, &parts.headers).await)
        }
        None if proxy::split(&path).is_some() => {
            ("HttpTrigger", proxy::handle(&app, &request_id, parts, body).await)
        }
        None => api(&app, &request_id, parts, body).await,
    };
    let refused = result.is_err();
    let mut resp = finish(&request_id, started, operation, &path, result);
    // A request openfc refused may have left its body unread, and the connection is then not reused: say so,
    // or a client sending its next request on it finds it closed. (A function's own error answers are not
    // refusals: their connections stay.)
    if sent_body && refused {
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// Renders the outcome of a request with its request id, and records and logs it.
fn finish(
    request_id: &str,
    started: Instant,
    operation: &'static str,
    path: &str,
    result: Result<Response, ApiError>,
) -> Response {
    let mut resp = match result {
        Ok(resp) => resp,
        Err(e) => {
            if let Some(detail) = &e.detail {
                tracing::error!(request_id = %request_id, operation, detail = %detail, "internal error");
            }
            e.render(request_id)
        }
    };
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert(X_FC_REQUEST_ID, v);
    }
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    crate::metrics::record_request(operation, status, elapsed.as_secs_f64());
    tracing::info!(
        request_id = %request_id,
        operation,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        path = %path,
        "request"
    );
    resp
}

async fn api(
    app: &App,
    request_id: &str,
    mut parts: axum::http::request::Parts,
    body: Body,
) -> (&'static str, Result<Response, ApiError>) {
    let query = Query::parse(parts.uri.query());
    let parsed = endpoint::parse(parts.method.as_str(), parts.uri.path(), &query);
    let operation = match &parsed {
        Ok((_, e)) => e.action(),
        Err(_) => "Unknown",
    };

    let result = async {
        // The web console's requests carry its session cookie instead of a signature (`session`).
        let mut caller = match session::authenticate(app, &parts).await {
            Some(session) => session?,
            None => auth::authenticate(&app.keyring, &parts).await?,
        };
        let outcome = async {
            let (version, endpoint) = parsed.map_err(|e| match e {
                ParseError::NotSupported => ApiError::path_not_supported(parts.method.as_str(), parts.uri.path()),
                ParseError::Invalid(core) => core.into(),
            })?;
            let account = caller.account.clone();
            // Authorization as data: the endpoint's RAM action and resource ARN, before the body is read.
            let resource = endpoint.resource(&app.region, &account);
            auth::authorize(&caller, endpoint.action(), &resource)?;
            tracing::debug!(account = %account, resource = %resource, "authorized");
            if matches!(endpoint, endpoint::Endpoint::InstanceExec { .. }) {
                return exec::handle(app, &account, endpoint, &query, &mut parts).await;
            }
            let body = caller.read_body(body, &parts.headers, app.max_body).await?;
            let call = handlers::Call { version, request_id, endpoint, account, query, headers: &parts.headers, body };
            handlers::handle(app, call).await
        }
        .await;
        caller.settle(&outcome);
        outcome
    }
    .await;
    (operation, result)
}

/// Collects the body into one buffer sized from Content-Length, refusing more than `max` bytes; each chunk
/// also goes to `on_chunk` (the signed-hash check). Call it only for authenticated requests (or anonymous
/// ones already known to be allowed): it buffers up to `max` bytes.
pub(crate) async fn read_body(
    body: Body,
    headers: &axum::http::HeaderMap,
    max: usize,
    mut on_chunk: impl FnMut(&[u8]),
) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::new(ErrorCode::EntityTooLarge, format!("payload size exceeds maximum allowed size ({max} bytes)"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0));
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::new(ErrorCode::InvalidArgument, format!("reading the request body failed: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                return Err(too_large());
            }
            on_chunk(&data);
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

