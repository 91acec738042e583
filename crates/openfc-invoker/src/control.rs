//! How openfc talks to a runtime over the custom-runtime HTTP contract: the control requests (`/invoke`,
//! `/http-invoke`, `/initialize`, `/pre-stop`) with the function version's `x-fc-*` headers, the span context of
//! traced functions, and keep-alive connections driven by the invocation that uses them.

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::instance::MAX_RESPONSE;

/// A lifecycle step of the custom-runtime contract, or the matching `x-fc-function-type` of the Runtime API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Invoke,
    Initialize,
    PreStop,
}

/// An HTTP-trigger request as the function sees it.
pub struct HttpTarget {
    pub method: http::Method,
    pub uri: http::Uri,
    pub headers: http::HeaderMap,
}

/// One request to a runtime, whatever its protocol.
pub struct Control {
    pub hook: Hook,
    pub request_id: String,
    pub qualifier: String,
    pub body: Bytes,
    pub http: Option<HttpTarget>,
    /// The role's temporary credentials, for a function whose service has a role (else the headers stay empty).
    pub credentials: Option<openfc_core::invocation::Credentials>,
}

/// Puts a role's temporary credentials into a control request's headers (`x-fc-access-key-id`, ...).
pub(crate) fn set_credentials(h: &mut http::HeaderMap, creds: &openfc_core::invocation::Credentials) {
    for (name, value) in [
        ("x-fc-access-key-id", &creds.access_key_id),
        ("x-fc-access-key-secret", &creds.access_key_secret),
        ("x-fc-security-token", &creds.security_token),
    ] {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            h.insert(http::HeaderName::from_static(name), v);
        }
    }
}

const X_FC_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-fc-request-id");
pub(crate) const X_FC_TRACING_ENDPOINT: http::HeaderName = http::HeaderName::from_static("x-fc-tracing-jaeger-endpoint");
pub(crate) const X_FC_TRACING_SPAN: http::HeaderName =
    http::HeaderName::from_static("x-fc-tracing-opentracing-span-context");

/// The span context an invocation of a traced function carries (Jaeger's `trace:span:parent:flags`, hex),
/// derived from the request id so that every runtime protocol gives the same one: the trace id is the request
/// id's 128 bits, the span its last 64, no parent (openfc records no span of its own), sampled.
pub(crate) fn span_context(request_id: &str) -> String {
    let hex: String = request_id.chars().filter(char::is_ascii_hexdigit).collect::<String>().to_ascii_lowercase();
    let trace = if hex.len() >= 32 { hex[..32].to_owned() } else { format!("{hex:0>32}") };
    format!("{trace}:{}:0:1", &trace[16..])
}
const X_FC_CONTROL_PATH: http::HeaderName = http::HeaderName::from_static("x-fc-control-path");
const X_FC_QUALIFIER: http::HeaderName = http::HeaderName::from_static("x-fc-qualifier");

/// The headers of a function version's control requests, built once per pool.
pub struct ControlHeaders {
    /// The `x-fc-*` headers that depend only on the function version (what the Runtime API delivers too).
    pub fixed: http::HeaderMap,
    /// `fixed` followed by the per-request ones (request id, control path, qualifier) with empty values: a
    /// clone of it takes the request's values in place, without the map growing.
    http: http::HeaderMap,
}

impl ControlHeaders {
    pub fn new(fixed: http::HeaderMap) -> Self {
        let mut http = fixed.clone();
        for name in [X_FC_REQUEST_ID, X_FC_CONTROL_PATH, X_FC_QUALIFIER] {
            http.insert(name, http::HeaderValue::from_static(""));
        }
        ControlHeaders { fixed, http }
    }
}

impl Control {
    /// The custom-runtime contract's request (fc-api.md §8.1): `POST /invoke`, `/http-invoke` (the client's
    /// method, path and headers, marked by `x-fc-control-path`), `/initialize`, `GET /pre-stop`, each with the
    /// function version's fixed `x-fc-*` headers.
    pub(crate) fn into_http(self, headers: &ControlHeaders) -> http::Request<Full<Bytes>> {
        let path = match (self.hook, self.http.is_some()) {
            (Hook::Invoke, false) => "/invoke",
            (Hook::Invoke, true) => "/http-invoke",
            (Hook::Initialize, _) => "/initialize",
            (Hook::PreStop, _) => "/pre-stop",
        };
        let mut req = http::Request::new(Full::new(self.body));
        *req.method_mut() = if self.hook == Hook::PreStop { http::Method::GET } else { http::Method::POST };
        *req.uri_mut() = http::Uri::from_static(path);
        let h = req.headers_mut();
        *h = headers.http.clone();
        let text = |s: &str| http::HeaderValue::from_str(s).unwrap_or_else(|_| http::HeaderValue::from_static(""));
        h.insert(X_FC_REQUEST_ID, text(&self.request_id));
        h.insert(X_FC_CONTROL_PATH, http::HeaderValue::from_static(path));
        h.insert(X_FC_QUALIFIER, text(&self.qualifier));
        if let Some(creds) = &self.credentials {
            set_credentials(h, creds);
        }
        if h.contains_key(X_FC_TRACING_ENDPOINT) {
            h.insert(X_FC_TRACING_SPAN, text(&span_context(&self.request_id)));
        }
        if let Some(call) = self.http {
            *req.method_mut() = call.method;
            *req.uri_mut() = call.uri;
            for (k, v) in call.headers.iter() {
                if !crate::reserved_header(k.as_str()) && k != http::header::HOST {
                    req.headers_mut().append(k.clone(), v.clone());
                }
            }
        }
        req
    }
}

/// A keep-alive HTTP/1.1 connection to the runtime: the request handle and the connection itself, which
/// is driven by whichever invocation uses it rather than by a task of its own, so a call costs no
/// hand-offs between tasks (and, on a busy host, no wake-ups across cores).
pub(crate) struct Conn {
    pub(crate) sender: SendRequest<Full<Bytes>>,
    pub(crate) driver: hyper::client::conn::http1::Connection<TokioIo<tokio::net::TcpStream>, Full<Bytes>>,
}

impl Conn {
    /// Drives the connection until it can take a request; false once the runtime has closed it. The
    /// connection goes first: an idle one was not polled since its last use, so a close by the runtime
    /// (an idle keep-alive timeout, as Node's 5 s) is only seen now — the request handle may still say ready.
    pub(crate) async fn ready(&mut self) -> bool {
        tokio::select! {
            biased;
            _ = &mut self.driver => false,
            r = self.sender.ready() => r.is_ok(),
        }
    }

    /// One request and its whole response, driving the connection meanwhile.
    pub(crate) async fn exchange(&mut self, req: http::Request<Full<Bytes>>) -> Result<(http::response::Parts, Bytes), CallError> {
        let exchange = async {
            let resp = self.sender.send_request(req).await.map_err(|e| CallError::Broken(e.to_string()))?;
            let (parts, body) = resp.into_parts();
            let body = crate::budget::collect(body, MAX_RESPONSE)
                .await
                .map_err(|e| CallError::Broken(format!("reading the response: {e}")))?;
            Ok((parts, body))
        };
        tokio::pin!(exchange);
        let mut driver_done = false;
        loop {
            tokio::select! {
                biased;
                r = &mut exchange => return r,
                // Once the connection ends, the exchange ends too: with what arrived, or with an error.
                _ = &mut self.driver, if !driver_done => driver_done = true,
            }
        }
    }
}

/// A response from the runtime.
pub struct RuntimeResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// Why a request to the runtime did not produce a response.
pub enum CallError {
    Timeout,
    /// The connection failed or the process is gone.
    Broken(String),
}
