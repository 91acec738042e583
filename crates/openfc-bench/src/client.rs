//! The client side: FC-scheme request signing, exactly as the fc2 SDKs do it, and one keep-alive
//! HTTP/1.1 connection (TCP_NODELAY) per worker, on hyper's low-level connection API.

use std::net::SocketAddr;
use std::time::SystemTime;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{SendRequest, handshake};
use hyper::{HeaderMap, Method, Request, Response, body::Incoming};
use hyper_util::rt::TokioIo;
use openfc_auth::{RequestParts, SecretKey, fc_authorization};
use tokio::net::TcpStream;

/// The FC scheme never hashes the body; `RequestParts` wants a value all the same.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// An AccessKey and the server it signs for (`credentials.json`).
pub struct Signer {
    pub addr: SocketAddr,
    access_key_id: String,
    secret: SecretKey,
}

impl Signer {
    /// Reads `{"accessKeyId","accessKeySecret","endpoint"}`; requests go to `addr`.
    pub fn from_credentials(creds: &serde_json::Value, addr: SocketAddr) -> anyhow::Result<Self> {
        let field = |k: &str| creds[k].as_str().map(str::to_owned).with_context(|| format!("credentials lack {k}"));
        Ok(Self { addr, access_key_id: field("accessKeyId")?, secret: SecretKey::new(field("accessKeySecret")?) })
    }

    /// A signed request: `Date` and `Content-Type` are sent and signed, as fc2 does.
    pub fn request(&self, method: Method, path_and_query: &str, body: Bytes) -> Request<Full<Bytes>> {
        self.request_with(method, path_and_query, body, &[])
    }

    /// A signed request with extra headers (`x-fc-*` ones are part of the signature).
    pub fn request_with(
        &self,
        method: Method,
        path_and_query: &str,
        body: Bytes,
        extra: &[(&str, &str)],
    ) -> Request<Full<Bytes>> {
        let date = httpdate::fmt_http_date(SystemTime::now());
        let (raw_path, raw_query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let mut headers = vec![("date", date.as_str()), ("content-type", "application/json")];
        headers.extend_from_slice(extra);
        let parts = RequestParts {
            method: method.as_str(),
            raw_path,
            raw_query,
            headers: &headers,
            body_sha256_hex: EMPTY_SHA256,
        };
        let authorization = fc_authorization(&self.access_key_id, &self.secret, &parts);
        let mut builder = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header("host", self.addr.to_string())
            .header("date", &date)
            .header("content-type", "application/json")
            .header("authorization", authorization);
        for (k, v) in extra {
            builder = builder.header(*k, *v);
        }
        builder.body(Full::new(body)).expect("valid request")
    }

    /// The same key, signing for another server (the baselines).
    pub fn for_addr(&self, addr: SocketAddr) -> Self {
        Self { addr, access_key_id: self.access_key_id.clone(), secret: self.secret.clone() }
    }
}

/// An unsigned GET (signed code URLs carry their own signature).
pub fn plain_get(addr: SocketAddr, path_and_query: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .uri(path_and_query)
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .expect("valid request")
}

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    tx: SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let tcp = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        tcp.set_nodelay(true)?;
        let (tx, conn) = handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { tx })
    }

    /// Sends a request and returns the response with its body still unread.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<Response<Incoming>> {
        self.tx.ready().await?;
        Ok(self.tx.send_request(req).await?)
    }

    /// Sends a request and reads the whole body; `Err` for transport failures only.
    pub async fn call(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
        let (status, _, body) = self.call_full(req).await?;
        Ok((status, body))
    }

    /// Like `call`, with the response headers.
    pub async fn call_full(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<(u16, HeaderMap, Bytes)> {
        let resp = self.send(req).await?;
        let status = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        Ok((status, parts.headers, body.collect().await?.to_bytes()))
    }

    /// Like `call`, but any non-2xx status is an error carrying the body.
    pub async fn call_ok(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<Bytes> {
        let what = format!("{} {}", req.method(), req.uri().path());
        let (status, body) = self.call(req).await?;
        if !(200..300).contains(&status) {
            bail!("{what}: HTTP {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body)
    }
}
