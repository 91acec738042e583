//! The Runtime API 2020-11-11 (runtimes.md §3.2–3.4) that go1's SDK (inside the user's binary) and openfc's
//! PHP shim long-poll. openfc serves it itself, per instance, on a listener made inside the instance's network
//! namespace at `127.0.0.1:19001` (`openfc_sandbox::listen_in_netns`): only that instance can reach it, and
//! it exists before the runtime is exec'd (the sandbox's gate), so the runtime's first `/next` never fails.
//!
//! One [`RuntimeApi`] per instance. The invoker *dispatches* a request (an invocation, or the initializer /
//! pre-stop hook, marked by `x-fc-function-type`); it is handed only to a `/next` that is waiting — several
//! may wait at once, one per goroutine of a concurrent SDK, or one at a time for older SDKs and the PHP
//! shim — so an instance never runs more than it asked for. The runtime answers on `.../{id}/response` or
//! `.../{id}/error`; the result goes back to the dispatcher as a [`RuntimeResponse`] shaped like a
//! custom-runtime answer, so everything after the call (error types, log tails, metrics) is shared with the
//! HTTP runtimes. Readiness is the first `/next`.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::sync::{Notify, oneshot, watch};

use crate::instance::{CallError, Control, Hook, MAX_RESPONSE, RuntimeResponse};

const PREFIX: &str = "/2020-11-11/runtime/";
/// Connections one instance may hold open to its Runtime API at once (an SDK uses one per request in flight
/// and one for `/next`); beyond it new ones are closed, so a function cannot spend openfc's descriptors.
const MAX_CONNECTIONS: usize = 256;
/// Largest `init/error` body kept.
const MAX_INIT_ERROR: usize = 64 * 1024;

pub struct RuntimeApi {
    state: Mutex<State>,
    /// Wakes `wait_ready`: the first `/next`, an init error, or the end.
    changed: Notify,
    /// True once the instance ended: the accept loop and every connection stop.
    ended: watch::Sender<bool>,
}

#[derive(Default)]
struct State {
    /// Dispatched, not yet taken by a `/next`.
    queue: VecDeque<Delivery>,
    /// `/next` requests waiting for a delivery.
    polls: VecDeque<oneshot::Sender<Delivery>>,
    /// Taken (or queued) deliveries waiting for their `/response` or `/error`, by request id.
    running: HashMap<String, oneshot::Sender<Reply>>,
    polled: bool,
    init_error: Option<Bytes>,
    ended: bool,
}

struct Delivery {
    request_id: String,
    headers: HeaderMap,
    /// For `x-fc-function-deadline`, counted from the moment a `/next` takes it.
    timeout: Duration,
    body: Bytes,
    taken: oneshot::Sender<()>,
}

enum Reply {
    Response { headers: HeaderMap, body: Bytes },
    Error { body: Bytes },
}

/// How the runtime came up, for `Instance::start`.
pub enum Ready {
    Polled,
    /// `POST /2020-11-11/runtime/init/error`, with its body.
    InitError(Bytes),
    Ended,
    TimedOut,
}

impl RuntimeApi {
    pub fn new() -> Arc<RuntimeApi> {
        Arc::new(RuntimeApi { state: Mutex::new(State::default()), changed: Notify::new(), ended: watch::channel(false).0 })
    }

    /// Serves the instance's connections on `listener` until [`RuntimeApi::end`].
    pub fn serve(self: &Arc<Self>, listener: tokio::net::TcpListener) {
        let api = self.clone();
        let mut ended = self.ended.subscribe();
        let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((s, _)) => s,
                        Err(e) => {
                            tracing::debug!(error = %e, "runtime API accept failed");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                    _ = until_ended(&mut ended) => return,
                };
                let Ok(permit) = connections.clone().try_acquire_owned() else {
                    tracing::debug!("an instance holds too many Runtime API connections; closing a new one");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (api, mut ended) = (api.clone(), api.ended.subscribe());
                tokio::spawn(async move {
                    let _permit = permit;
                    let service = hyper::service::service_fn(move |req| {
                        let api = api.clone();
                        async move { Ok::<_, Infallible>(api.handle(req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service);
                    // Dropping the connection at the end closes the socket: nothing keeps the namespace alive.
                    tokio::select! {
                        _ = conn => {}
                        _ = until_ended(&mut ended) => {}
                    }
                });
            }
        });
    }

    /// The instance ended (killed, or its process exited): pending dispatches fail, waiting polls and the
    /// listener go.
    pub fn end(&self) {
        {
            let mut s = self.state.lock().expect("runtime api");
            s.ended = true;
            s.queue.clear();
            s.polls.clear();
            s.running.clear();
        }
        self.ended.send_replace(true);
        self.changed.notify_waiters();
    }

    /// Waits until the runtime's first `/next`, an init error, the end, or `deadline`.
    pub async fn wait_ready(&self, deadline: tokio::time::Instant) -> Ready {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let s = self.state.lock().expect("runtime api");
                if let Some(body) = &s.init_error {
                    return Ready::InitError(body.clone());
                }
                if s.ended {
                    return Ready::Ended;
                }
                if s.polled {
                    return Ready::Polled;
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Ready::TimedOut;
            }
        }
    }

    /// Runs one request through the runtime: handed to a waiting `/next` (waiting up to `limit` for one),
    /// then answered within `limit` of being taken.
    pub async fn call(&self, fixed: &HeaderMap, control: Control, limit: Duration) -> Result<RuntimeResponse, CallError> {
        let is_http = control.http.is_some();
        let request_id = control.request_id.clone();
        let (headers, body) = delivery(fixed, control);
        let (taken_tx, taken) = oneshot::channel();
        let (reply_tx, reply) = oneshot::channel();
        {
            let mut s = self.state.lock().expect("runtime api");
            if s.ended {
                return Err(CallError::Broken("the runtime has exited".into()));
            }
            s.running.insert(request_id.clone(), reply_tx);
            let mut d = Delivery { request_id: request_id.clone(), headers, timeout: limit, body, taken: taken_tx };
            loop {
                match s.polls.pop_front() {
                    Some(poll) => match poll.send(d) {
                        Ok(()) => break,
                        // That poll's connection went away meanwhile; the next one.
                        Err(back) => d = back,
                    },
                    None => {
                        s.queue.push_back(d);
                        break;
                    }
                }
            }
        }
        // A caller that goes away (its client disconnected, or a timeout) takes its request back.
        let _forget = Forget { api: self, request_id: &request_id };
        let gone = || CallError::Broken("the runtime exited before answering".into());
        match tokio::time::timeout(limit, taken).await {
            Err(_) => return Err(CallError::Timeout),
            Ok(Err(_)) => return Err(gone()),
            Ok(Ok(())) => {}
        }
        let reply = match tokio::time::timeout(limit, reply).await {
            Err(_) => return Err(CallError::Timeout),
            Ok(Err(_)) => return Err(gone()),
            Ok(Ok(r)) => r,
        };
        Ok(match reply {
            Reply::Response { headers, body } => response(headers, body, is_http),
            Reply::Error { body } => {
                let mut h = HeaderMap::new();
                h.insert("x-fc-status", HeaderValue::from_static("404"));
                h.insert("x-fc-error-type", HeaderValue::from_static("UnhandledInvocationError"));
                h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                RuntimeResponse { status: 404, headers: h, body }
            }
        })
    }

    async fn handle(self: Arc<Self>, req: http::Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_owned();
        let Some(rest) = path.strip_prefix(PREFIX) else { return plain(StatusCode::NOT_FOUND, "unknown path") };
        match (req.method().clone(), rest) {
            (Method::GET, "invocation/next") => self.next().await,
            (Method::POST, "init/error") => {
                let body = read_body(req, MAX_INIT_ERROR).await.unwrap_or_else(|e| e);
                self.state.lock().expect("runtime api").init_error = Some(body);
                self.changed.notify_waiters();
                plain(StatusCode::OK, "")
            }
            (Method::POST, r) if r.starts_with("invocation/") => {
                let r = &r["invocation/".len()..];
                let (id, is_error) = match (r.strip_suffix("/response"), r.strip_suffix("/error")) {
                    (Some(id), _) => (id.to_owned(), false),
                    (_, Some(id)) => (id.to_owned(), true),
                    _ => return plain(StatusCode::NOT_FOUND, "unknown path"),
                };
                // Only the answer to a request in flight is read (a function cannot make openfc buffer bodies
                // for made-up ids).
                if !self.state.lock().expect("runtime api").running.contains_key(&id) {
                    return plain(StatusCode::NOT_FOUND, "unknown or finished request id");
                }
                let headers = req.headers().clone();
                let (status, reply) = match read_body(req, MAX_RESPONSE).await {
                    Ok(body) if is_error => (StatusCode::OK, Reply::Error { body }),
                    Ok(body) => (StatusCode::OK, Reply::Response { headers, body }),
                    Err(body) => (StatusCode::PAYLOAD_TOO_LARGE, Reply::Error { body }),
                };
                let waiter = self.state.lock().expect("runtime api").running.remove(&id);
                match waiter {
                    Some(w) => {
                        let _ = w.send(reply);
                        plain(status, "")
                    }
                    None => plain(StatusCode::NOT_FOUND, "unknown or finished request id"),
                }
            }
            _ => plain(StatusCode::NOT_FOUND, "unknown path"),
        }
    }

    /// `GET .../invocation/next`: the next dispatched request, as soon as there is one.
    async fn next(&self) -> Response<Full<Bytes>> {
        let (first, waiting) = {
            let mut s = self.state.lock().expect("runtime api");
            if s.ended {
                return plain(StatusCode::GONE, "the instance is stopping");
            }
            let first = !s.polled;
            s.polled = true;
            match s.queue.pop_front() {
                Some(d) => (first, Err(d)),
                None => {
                    let (tx, rx) = oneshot::channel();
                    s.polls.push_back(tx);
                    (first, Ok(rx))
                }
            }
        };
        if first {
            self.changed.notify_waiters();
        }
        match waiting {
            Err(queued) => hand_over(queued),
            Ok(rx) => match rx.await {
                Ok(d) => hand_over(d),
                Err(_) => plain(StatusCode::GONE, "the instance is stopping"),
            },
        }
    }

    fn forget(&self, request_id: &str) {
        let mut s = self.state.lock().expect("runtime api");
        s.running.remove(request_id);
        s.queue.retain(|d| d.request_id != request_id);
    }
}

async fn until_ended(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|e| *e).await;
}

struct Forget<'a> {
    api: &'a RuntimeApi,
    request_id: &'a str,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.api.forget(self.request_id);
    }
}

/// The `/next` answer for a delivery: its headers, the deadline from now, its body.
fn hand_over(d: Delivery) -> Response<Full<Bytes>> {
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + d.timeout;
    let mut resp = Response::new(Full::new(d.body));
    *resp.headers_mut() = d.headers;
    resp.headers_mut().insert("x-fc-function-deadline", HeaderValue::from(deadline.as_millis() as u64));
    let _ = d.taken.send(());
    resp
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r
}

/// The body, or (as `Err`) FC's error body for one over the limit.
async fn read_body(req: http::Request<Incoming>, limit: usize) -> Result<Bytes, Bytes> {
    match crate::budget::collect(req.into_body(), limit).await {
        Ok(b) => Ok(b),
        Err(e) => Err(Bytes::from(
            serde_json::json!({"errorMessage": format!("the function's answer could not be read: {e}"), "errorType": "FunctionResponseError"})
                .to_string(),
        )),
    }
}

/// `x-fc-function-type` of each hook (runtimes.md §1).
fn function_type(hook: Hook) -> &'static str {
    match hook {
        Hook::Invoke => "0",
        Hook::Initialize => "1",
        Hook::PreStop => "2",
    }
}

/// The `/next` headers and body of a control request: every header the SDK needs (runtimes.md §3.3) but the
/// deadline, which is set when a `/next` takes it.
fn delivery(fixed: &HeaderMap, control: Control) -> (HeaderMap, Bytes) {
    let mut h = fixed.clone();
    h.remove(http::header::HOST);
    let text = |s: &str| HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""));
    h.insert("x-fc-request-id", text(&control.request_id));
    h.insert("x-fc-qualifier", text(&control.qualifier));
    h.insert("x-fc-function-type", HeaderValue::from_static(function_type(control.hook)));
    h.insert("x-fc-retry-count", HeaderValue::from_static("0"));
    if let Some(creds) = &control.credentials {
        crate::control::set_credentials(&mut h, creds);
    }
    if h.contains_key(crate::instance::X_FC_TRACING_ENDPOINT) {
        h.insert(crate::instance::X_FC_TRACING_SPAN, text(&crate::instance::span_context(&control.request_id)));
    }
    // A hook's deadline is its own limit (the initialization or pre-stop timeout); `x-fc-function-timeout`
    // stays the function's setting (the SDK's FcContext.Function.Timeout).
    if let Some(call) = &control.http {
        let params = http_params(call);
        if let Ok(v) = HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(params.to_string())) {
            h.insert("x-fc-http-params", v);
        }
    }
    (h, control.body)
}

/// `x-fc-http-params` of an HTTP-trigger request (runtimes.md §3.3): path, method, requestURI, clientIP, host,
/// queriesMap and headersMap (Go's canonical header keys: the SDK hands the map to `http.Request.Header`
/// as it is, and `Header.Get` looks keys up canonicalised).
fn http_params(call: &crate::instance::HttpTarget) -> serde_json::Value {
    let header = |k: &str| call.headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut headers: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    for (k, v) in call.headers.iter() {
        if crate::reserved_header(k.as_str()) {
            continue;
        }
        let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
        match headers.entry(canonical_header_key(k.as_str())).or_insert_with(|| serde_json::json!([])) {
            serde_json::Value::Array(a) => a.push(value.into()),
            _ => unreachable!("only arrays are inserted"),
        }
    }
    let mut queries: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    for pair in call.uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
        match queries.entry(decode(k)).or_insert_with(|| serde_json::json!([])) {
            serde_json::Value::Array(a) => a.push(decode(v).into()),
            _ => unreachable!("only arrays are inserted"),
        }
    }
    let request_uri = header("x-fc-request-uri").unwrap_or_else(|| call.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned());
    // openfc's HTTP layer hands the invoker no peer address: the client's own statement, when any.
    let client_ip = header("x-fc-client-ip")
        .or_else(|| header("x-real-ip"))
        .or_else(|| header("x-forwarded-for").and_then(|f| f.split(',').next().map(|s| s.trim().to_owned())))
        .unwrap_or_default();
    serde_json::json!({
        "path": call.uri.path(),
        "method": call.method.as_str(),
        "requestURI": request_uri,
        "clientIP": client_ip,
        "host": header("host").unwrap_or_default(),
        "queriesMap": queries,
        "headersMap": headers,
    })
}

/// Go's `textproto.CanonicalMIMEHeaderKey` for a valid header name: `x-custom-thing` → `X-Custom-Thing`.
fn canonical_header_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() });
        upper = c == '-';
    }
    out
}

/// A `/response` as the custom-runtime answer the rest of the invoker understands. An HTTP function's status
/// and headers come in `x-fc-http-params` (base64 JSON `{"status", "headersMap"}`).
fn response(headers: HeaderMap, body: Bytes, is_http: bool) -> RuntimeResponse {
    let mut out = HeaderMap::new();
    let mut status = 200;
    let params = headers
        .get("x-fc-http-params")
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v.as_bytes()).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    match params {
        Some(p) if is_http => {
            status = p.get("status").and_then(serde_json::Value::as_u64).filter(|s| (100..=599).contains(s)).unwrap_or(200) as u16;
            if let Some(map) = p.get("headersMap").and_then(serde_json::Value::as_object) {
                for (k, vs) in map {
                    let Ok(name) = HeaderName::from_bytes(k.as_bytes()) else { continue };
                    let values: Vec<&serde_json::Value> = match vs {
                        serde_json::Value::Array(a) => a.iter().collect(),
                        v => vec![v],
                    };
                    for v in values.into_iter().filter_map(serde_json::Value::as_str) {
                        if let Ok(v) = HeaderValue::from_str(v) {
                            out.append(name.clone(), v);
                        }
                    }
                }
            }
        }
        _ => {
            if let Some(ct) = headers.get(http::header::CONTENT_TYPE) {
                out.insert(http::header::CONTENT_TYPE, ct.clone());
            }
        }
    }
    RuntimeResponse { status, headers: out, body }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_keys_are_canonical_as_go_has_them() {
        assert_eq!(canonical_header_key("x-custom-thing"), "X-Custom-Thing");
        assert_eq!(canonical_header_key("content-type"), "Content-Type");
        assert_eq!(canonical_header_key("host"), "Host");
    }

    #[test]
    fn http_params_carry_the_request() {
        let mut headers = HeaderMap::new();
        headers.insert("x-client", HeaderValue::from_static("a"));
        headers.append("x-client", HeaderValue::from_static("b"));
        headers.insert("x-fc-request-uri", HeaderValue::from_static("/2016-08-15/proxy/s/f/p?a=1"));
        headers.insert("host", HeaderValue::from_static("example.com"));
        let call = crate::instance::HttpTarget { method: Method::PUT, uri: "/p/q?a=1&a=2&b=x%20y&c".parse().unwrap(), headers };
        let p = http_params(&call);
        assert_eq!(p["path"], "/p/q");
        assert_eq!(p["method"], "PUT");
        assert_eq!(p["requestURI"], "/2016-08-15/proxy/s/f/p?a=1");
        assert_eq!(p["host"], "example.com");
        assert_eq!(p["queriesMap"], serde_json::json!({"a": ["1", "2"], "b": ["x y"], "c": [""]}));
        assert_eq!(p["headersMap"]["X-Client"], serde_json::json!(["a", "b"]));
        assert!(p["headersMap"].get("X-Fc-Request-Uri").is_none(), "openfc's own headers stay out");
    }

    #[test]
    fn an_http_response_takes_status_and_headers_from_its_params() {
        let params = serde_json::json!({"status": 201, "headersMap": {"X-A": ["1", "2"], "Content-Type": ["text/plain"]}});
        let mut h = HeaderMap::new();
        h.insert("x-fc-http-params", HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(params.to_string())).unwrap());
        let r = response(h.clone(), Bytes::from_static(b"hi"), true);
        assert_eq!(r.status, 201);
        assert_eq!(r.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(r.headers["content-type"], "text/plain");
        let event = response(h, Bytes::new(), false);
        assert_eq!(event.status, 200, "an event invocation's params are not HTTP");
    }
}
