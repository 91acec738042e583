//! In-process tests of the request pipeline — endpoint parse, authentication, body, handler, render — through
//! `router` with `tower::ServiceExt::oneshot`: no binary, no socket. The `App` is the one `server::serve` wires,
//! on a temporary SQLite database and local code store, with an AccessKey sealed by a master key of its own.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use openfc_auth::{RequestParts, SecretKey, fc_authorization};
use openfc_blob::ObjectCodeStore;
use openfc_core::ports::{AccountRecord, CodeStore, MetaStore, SystemClock};
use openfc_core::usecase::Fc;
use openfc_core::invocation::{FunctionSpec, InvokeError, InvokeOutcome, InvokeRequest, SpecKey};
use openfc_meta::SqlMeta;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{App, router};
use crate::keys::{Keyring, MasterKey, new_access_key};

const PREFIXES: [&str; 2] = ["/2016-08-15", "/2021-04-06"];
const ACCOUNT: &str = "1234567890123456";
/// Small, so EntityTooLarge is cheap to reach.
const MAX_BODY: usize = 64 * 1024;

/// Runs nothing and reports an idle node: the pipeline under test never reaches a function.
struct IdleInvoker;

#[async_trait::async_trait]
impl openfc_core::invocation::Invoker for IdleInvoker {
    fn check_runtime(&self, _runtime: &str) -> Result<(), InvokeError> {
        Ok(())
    }

    async fn invoke(&self, _spec: &FunctionSpec, _req: InvokeRequest) -> Result<InvokeOutcome, InvokeError> {
        Err(InvokeError::internal("the router tests run no function"))
    }

    async fn ensure_warm(&self, _spec: &FunctionSpec, _target: usize) -> Result<usize, InvokeError> {
        Ok(0)
    }

    fn alive(&self, _key: &SpecKey) -> usize {
        0
    }
}

#[async_trait::async_trait]
impl crate::node::InvokerStatus for IdleInvoker {
    fn instance_counts(&self) -> (usize, usize) {
        (0, 0)
    }

    fn isolation(&self) -> Value {
        json!({"namespaces": "none (router tests)"})
    }

    fn warm_sandboxes(&self) -> usize {
        0
    }

    fn prestarted_health(&self) -> Value {
        json!({})
    }

    fn image_store(&self) -> Option<&Arc<openfc_image::store::ImageStore>> {
        None
    }

    fn paths_in_use(&self) -> std::collections::HashSet<std::path::PathBuf> {
        Default::default()
    }

    async fn function_logs(&self, _account: &str, _service: &str, _function: &str, _limit: usize) -> Vec<String> {
        Vec::new()
    }

    fn exec(
        &self,
        _account: &str,
        _service: &str,
        _function: &str,
        instance: &str,
        _req: openfc_invoker::exec::ExecRequest,
    ) -> Result<openfc_invoker::exec::ExecSession, openfc_invoker::exec::ExecError> {
        Err(openfc_invoker::exec::ExecError::NoInstance(instance.to_owned()))
    }
}

struct Harness {
    app: Arc<App>,
    ak: String,
    secret: String,
    _dir: tempfile::TempDir,
}

/// A response, collected.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn request_id(&self) -> &str {
        let rid = self.headers.get("x-fc-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(uuid::Uuid::parse_str(rid).is_ok(), "X-Fc-Request-Id {rid:?} on a {} response", self.status);
        rid
    }

    fn json(&self) -> Value {
        let ctype = self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(ctype.starts_with("application/json"), "Content-Type {ctype:?}: {}", self.text());
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A success: this status, a request id, a JSON body.
    fn ok(&self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        self.request_id();
        self.json()
    }

    /// An FC error: this status and code, both key styles, RequestId = X-Fc-Request-Id.
    fn error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "expected {status} {code}: {}", self.text());
        let rid = self.request_id().to_owned();
        let body = self.json();
        let keys: Vec<&str> = body.as_object().expect("an object").keys().map(String::as_str).collect();
        for key in ["ErrorCode", "ErrorMessage", "Code", "Message", "RequestId"] {
            assert!(keys.contains(&key), "{key} missing in {body}");
        }
        assert_eq!((body["ErrorCode"].as_str(), body["Code"].as_str()), (Some(code), Some(code)), "{body}");
        let message = body["ErrorMessage"].as_str().unwrap_or("");
        assert!(!message.is_empty(), "{body}");
        assert_eq!(body["Message"].as_str(), Some(message), "{body}");
        assert_eq!(body["RequestId"].as_str(), Some(rid.as_str()), "{body}");
        body
    }
}

impl Harness {
    /// An `App` wired as `server::serve` wires it: the account and its root key in a fresh SQLite database,
    /// a local code store; an invoker that runs nothing (nothing here invokes).
    async fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let meta = SqlMeta::connect(&format!("sqlite://{}", dir.path().join("meta.db").display())).await.unwrap();
        let master = Arc::new(MasterKey::load_or_create(&dir.path().join("master.key")).unwrap());
        let (key, secret) = new_access_key(&master, ACCOUNT, "t");
        let account = AccountRecord { id: ACCOUNT.into(), created_time: "t".into() };
        meta.create_first_account(&account, &key).await.unwrap();
        let meta_dyn: Arc<dyn MetaStore> = meta.clone();
        let code: Arc<dyn CodeStore> =
            Arc::new(ObjectCodeStore::local(dir.path().join("code"), dir.path().join("oss")).unwrap());
        let invoker = Arc::new(IdleInvoker);
        let fc = Arc::new(Fc {
            meta: meta_dyn.clone(),
            code,
            clock: Arc::new(SystemClock),
            limits: Default::default(),
            gc_grace: Duration::from_secs(60),
            region: "cn-hangzhou".into(),
            hot: openfc_core::cache::HotCache::new(Duration::from_secs(1)),
            invoker: invoker.clone(),
            events: Some(Arc::new(openfc_core::asyncq::Events::new(meta.clone(), Default::default()))),
            images: None,
            cluster: openfc_core::cluster::Cluster::single(),
        });
        let app = Arc::new(App {
            fc,
            invoker,
            default_account: ACCOUNT.into(),
            keyring: Keyring::new(meta_dyn, master.clone(), Duration::from_secs(60)),
            region: "cn-hangzhou".into(),
            public_url: "http://127.0.0.1:9000".into(),
            url_key: master.derive("openfc code url v1"),
            code_url_ttl: 600,
            max_body: MAX_BODY,
            metrics: crate::metrics::handle(),
            metrics_token: None,
            health: json!({"status": "ok"}),
            console: crate::console::Settings { session_key: master.derive("openfc console session v1"), session_ttl_secs: 60 },
        });
        Harness { app, ak: key.id, secret, _dir: dir }
    }

    fn router(&self) -> Router {
        router(self.app.clone())
    }

    async fn send(&self, req: Request<Body>) -> Answer {
        let resp = self.router().oneshot(req).await.expect("the router is infallible");
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        Answer { status: parts.status, headers: parts.headers, body }
    }

    /// A request signed with the FC scheme by `secret` (the query is not signed for API calls); JSON
    /// Content-Type. `body` None: no body.
    fn signed_with(&self, secret: &str, method: &str, uri: &str, body: Option<Vec<u8>>) -> Request<Body> {
        let date = httpdate::fmt_http_date(SystemTime::now());
        let (path, query) = match uri.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (uri, None),
        };
        let headers = [("content-type", "application/json"), ("date", date.as_str())];
        let parts = RequestParts { method, raw_path: path, raw_query: query, headers: &headers, body_sha256_hex: "" };
        let auth = fc_authorization(&self.ak, &SecretKey::new(secret.to_owned()), &parts);
        Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .header("date", date)
            .header("authorization", auth)
            .body(body.map_or_else(Body::empty, Body::from))
            .unwrap()
    }

    fn signed(&self, method: &str, uri: &str, body: Option<Vec<u8>>) -> Request<Body> {
        self.signed_with(&self.secret, method, uri, body)
    }

    async fn create_service(&self, prefix: &str, name: &str) -> Answer {
        let body = serde_json::to_vec(&json!({"serviceName": name, "description": "in-process"})).unwrap();
        self.send(self.signed("POST", &format!("{prefix}/services"), Some(body))).await
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

fn get(uri: &str) -> Request<Body> {
    Request::builder().uri(uri).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn health_and_metrics_carry_a_request_id() {
    let h = Harness::new().await;
    let health = h.send(get("/health")).await;
    assert_eq!(health.ok(200)["status"], "ok");
    let metrics = h.send(get("/metrics")).await;
    assert_eq!(metrics.status, StatusCode::OK);
    metrics.request_id();
    let ctype = metrics.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    // Each response its own id.
    assert_ne!(h.send(get("/health")).await.request_id(), health.request_id());
}

#[tokio::test]
async fn an_unsigned_request_is_refused_with_missing_required_header() {
    let h = Harness::new().await;
    for prefix in PREFIXES {
        let answer = h.send(get(&format!("{prefix}/services"))).await;
        let body = answer.error(400, "MissingRequiredHeader");
        assert!(body["ErrorMessage"].as_str().unwrap().contains("Authorization"), "{body}");
    }
    // Authentication comes before the endpoint: an unsigned request to no endpoint is refused the same way.
    h.send(get("/2016-08-15/no-such-thing")).await.error(400, "MissingRequiredHeader");
}

#[tokio::test]
async fn a_bad_signature_is_refused_with_signature_not_match() {
    let h = Harness::new().await;
    for prefix in PREFIXES {
        let wrong = format!("{}x", h.secret);
        let req = h.signed_with(&wrong, "GET", &format!("{prefix}/services"), None);
        h.send(req).await.error(403, "SignatureNotMatch");
        // Signed for another path.
        let mut req = h.signed("GET", &format!("{prefix}/services"), None);
        *req.uri_mut() = format!("{prefix}/account-settings").parse().unwrap();
        h.send(req).await.error(403, "SignatureNotMatch");
    }
    let mut req = h.signed("GET", "/2016-08-15/services", None);
    let forged = req.headers()["authorization"].to_str().unwrap().replacen(&h.ak, "LTAInosuchkey00000000000", 1);
    req.headers_mut().insert("authorization", forged.parse().unwrap());
    h.send(req).await.error(403, "InvalidAccessKeyID");
}

#[tokio::test]
async fn an_unknown_path_is_path_not_supported() {
    let h = Harness::new().await;
    for uri in ["/2016-08-15/no-such-thing", "/2021-04-06/services/s/no-such-thing", "/2099-01-01/services", "/"] {
        let body = h.send(h.signed("GET", uri, None)).await.error(400, "PathNotSupported");
        assert!(body["ErrorMessage"].as_str().unwrap().contains(uri), "{body}");
    }
    // A known path with a method it does not take.
    h.send(h.signed("PATCH", "/2016-08-15/services", None)).await.error(400, "PathNotSupported");
}

#[tokio::test]
async fn an_unknown_service_is_404() {
    let h = Harness::new().await;
    for prefix in PREFIXES {
        let name = unique("nosuch");
        let answer = h.send(h.signed("GET", &format!("{prefix}/services/{name}"), None)).await;
        let body = answer.error(404, "ServiceNotFound");
        assert!(body["ErrorMessage"].as_str().unwrap().contains(&name), "{body}");
        let answer = h.send(h.signed("GET", &format!("{prefix}/services/{name}/functions"), None)).await;
        answer.error(404, "ServiceNotFound");
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_invalid_argument() {
    let h = Harness::new().await;
    for prefix in PREFIXES {
        let uri = format!("{prefix}/services");
        h.send(h.signed("POST", &uri, Some(b"{not json".to_vec()))).await.error(400, "InvalidArgument");
        h.send(h.signed("POST", &uri, Some(b"[1, 2]".to_vec()))).await.error(400, "InvalidArgument");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_entity_too_large() {
    let h = Harness::new().await;
    let big = vec![b' '; MAX_BODY + 1];
    for prefix in PREFIXES {
        let uri = format!("{prefix}/services");
        // Declared too large: refused before reading.
        let mut req = h.signed("POST", &uri, Some(big.clone()));
        req.headers_mut().insert("content-length", big.len().into());
        h.send(req).await.error(400, "EntityTooLarge");
        // Not declared (chunked): refused once the body passes the limit.
        let chunks = big.chunks(4096).map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c))).collect::<Vec<_>>();
        let mut req = h.signed("POST", &uri, None);
        *req.body_mut() = Body::from_stream(futures::stream::iter(chunks));
        h.send(req).await.error(400, "EntityTooLarge");
    }
    // At the limit the body is read (and is a valid request).
    let name = unique("atlimit");
    let mut body = serde_json::to_vec(&json!({"serviceName": name})).unwrap();
    body.resize(MAX_BODY, b' ');
    h.send(h.signed("POST", "/2016-08-15/services", Some(body))).await.ok(200);
}

#[tokio::test]
async fn signed_create_get_and_list_services_round_trip_on_both_prefixes() {
    let h = Harness::new().await;
    for (writer, reader) in [(PREFIXES[0], PREFIXES[1]), (PREFIXES[1], PREFIXES[0])] {
        let name = unique("svc");
        let created = h.create_service(writer, &name).await;
        let body = created.ok(200);
        assert_eq!(body["serviceName"].as_str(), Some(name.as_str()));
        assert_eq!(body["description"], "in-process");
        let etag = created.headers.get("etag").expect("CreateService sends an ETag").clone();

        for prefix in [writer, reader] {
            let got = h.send(h.signed("GET", &format!("{prefix}/services/{name}"), None)).await;
            let service = got.ok(200);
            assert_eq!(service["serviceName"], body["serviceName"]);
            assert_eq!(service["serviceId"], body["serviceId"]);
            assert_eq!(service["createdTime"], body["createdTime"]);
            assert_eq!(got.headers.get("etag"), Some(&etag));
            assert_ne!(got.request_id(), created.request_id());

            let listed = h.send(h.signed("GET", &format!("{prefix}/services?prefix={name}"), None)).await.ok(200);
            let services = listed["services"].as_array().unwrap();
            let names: Vec<&str> = services.iter().filter_map(|s| s["serviceName"].as_str()).collect();
            assert_eq!(names, [name.as_str()], "{listed}");
            assert!(listed.get("nextToken").is_none(), "{listed}");
        }
        // The name is taken now, on either prefix.
        h.create_service(reader, &name).await.error(409, "ServiceAlreadyExists");
    }
}

#[tokio::test]
async fn vpc_bindings_are_stored_listed_and_go_with_their_service() {
    let h = Harness::new().await;
    for prefix in PREFIXES {
        let name = unique("bind");
        h.create_service(prefix, &name).await.ok(200);
        let uri = format!("{prefix}/services/{name}/bindings");
        let bind = |vpc: &str| serde_json::to_vec(&json!({"vpcId": vpc})).unwrap();
        h.send(h.signed("POST", &uri, Some(bind("vpc-b")))).await.ok(200);
        h.send(h.signed("POST", &uri, Some(bind("vpc-a")))).await.ok(200);
        h.send(h.signed("POST", &uri, Some(bind("vpc-a")))).await.ok(200);
        assert_eq!(h.send(h.signed("GET", &uri, None)).await.ok(200), json!({"vpcIds": ["vpc-a", "vpc-b"]}));
        let bad = h.send(h.signed("POST", &uri, Some(b"{}".to_vec()))).await.error(400, "InvalidArgument");
        assert_eq!(bad["ErrorMessage"], "VpcId is required but not provided.");
        let missing = h.send(h.signed("DELETE", &format!("{uri}/vpc-zz"), None)).await.error(404, "VpcBindingNotFound");
        assert!(missing["ErrorMessage"].as_str().unwrap().contains("vpc-zz"), "{missing}");
        let answer = h.send(h.signed("DELETE", &format!("{uri}/vpc-b"), None)).await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT);
        assert_eq!(h.send(h.signed("GET", &uri, None)).await.ok(200), json!({"vpcIds": ["vpc-a"]}));
        // Deleting the service takes its bindings: a re-created one starts with none.
        let answer = h.send(h.signed("DELETE", &format!("{prefix}/services/{name}"), None)).await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT);
        h.send(h.signed("GET", &uri, None)).await.error(404, "ServiceNotFound");
        h.create_service(prefix, &name).await.ok(200);
        assert_eq!(h.send(h.signed("GET", &uri, None)).await.ok(200), json!({"vpcIds": []}));
    }
}

#[tokio::test]
async fn reserved_capacities_are_an_empty_list_on_both_spellings() {
    let h = Harness::new().await;
    for prefix in PREFIXES {
        for path in ["reservedCapacities", "reserved-capacities"] {
            let got = h.send(h.signed("GET", &format!("{prefix}/{path}?limit=10"), None)).await.ok(200);
            assert_eq!(got, json!({"reservedCapacities": []}));
        }
        h.send(h.signed("GET", &format!("{prefix}/reserved-capacities?limit=abc"), None)).await.error(400, "InvalidArgument");
    }
}
