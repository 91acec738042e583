//! The signed HTTP client of the resource CLI: where the endpoint and the AccessKey come from, FC-scheme
//! signatures (spec §3.1, as fc2 Python signs: `Date` and `Content-Type` always sent and signed, no
//! `Content-MD5`, the `x-fc-*` headers, the decoded path without the query) and FC errors.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use openfc_auth::{RequestParts, SecretKey, fc_authorization};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};
use serde_json::Value;

use super::{CliError, ConnArgs};

/// The API prefix of the fc2 SDKs, whose signature scheme this client speaks.
pub const PREFIX: &str = "/2016-08-15";
/// `openfc serve`'s default data directory (config.rs) and listen address.
const DEFAULT_DATA_DIR: &str = "openfc-data";
/// The FC scheme signs no body hash; `RequestParts` wants one all the same.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Path segments keep only RFC 3986 unreserved characters unescaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// An AccessKey to sign with.
pub struct Credentials {
    pub access_key_id: String,
    secret: SecretKey,
    security_token: Option<String>,
    account_id: Option<String>,
}

/// What `openfc serve` writes on first start (keys.rs `write_credentials`).
#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CredentialsFile {
    account_id: Option<String>,
    access_key_id: Option<String>,
    access_key_secret: Option<String>,
    endpoint: Option<String>,
}

/// Reads one environment variable, empty counting as unset.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The endpoint and key from flags (with their `OPENFC_*` twins), then the Alibaba Cloud tools' variables,
/// then the data directory's `credentials.json` — read only when something is still missing.
pub fn resolve(args: &ConnArgs) -> Result<(Url, Credentials), CliError> {
    let path = args.data_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)).join("credentials.json");
    let mut file = LazyFile { path, read: None };
    let flags = (args.keys.access_key_id.clone(), args.keys.access_key_secret.clone());
    let alibaba = (env("ALIBABA_CLOUD_ACCESS_KEY_ID"), env("ALIBABA_CLOUD_ACCESS_KEY_SECRET"));
    let (id, secret, from_file) = match (flags, alibaba) {
        ((Some(id), Some(secret)), _) => (id, secret, false),
        ((Some(_), None), _) | ((None, Some(_)), _) => {
            return Err(CliError::Unreachable(
                "give both --access-key-id and --access-key-secret (or OPENFC_ACCESS_KEY_ID and OPENFC_ACCESS_KEY_SECRET)".into(),
            ));
        }
        (_, (Some(id), Some(secret))) => (id, secret, false),
        _ => {
            let f = file.get("an AccessKey")?;
            match (&f.access_key_id, &f.access_key_secret) {
                (Some(id), Some(secret)) => (id.clone(), secret.clone(), true),
                _ => {
                    let path = file.path.display();
                    return Err(CliError::Unreachable(format!("{path} has no accessKeyId/accessKeySecret")));
                }
            }
        }
    };
    let endpoint = match &args.endpoint {
        Some(e) => e.clone(),
        // A key from elsewhere may still be for this data directory's server: its endpoint is the best guess.
        None => match file.get("the endpoint") {
            Ok(f) => f.endpoint.clone().unwrap_or_else(default_endpoint),
            Err(_) => default_endpoint(),
        },
    };
    let account_id = match (&args.keys.account_id, from_file) {
        (Some(a), _) => Some(a.clone()),
        (None, true) => file.get("the account id")?.account_id.clone(),
        (None, false) => None,
    };
    let security_token = args.keys.security_token.clone().or_else(|| env("ALIBABA_CLOUD_SECURITY_TOKEN"));
    let creds = Credentials { access_key_id: id, secret: SecretKey::new(secret), security_token, account_id };
    Ok((parse_endpoint(&endpoint)?, creds))
}

/// `credentials.json`, read at most once and only if asked for.
struct LazyFile {
    path: PathBuf,
    read: Option<CredentialsFile>,
}

impl LazyFile {
    fn get(&mut self, need: &str) -> Result<&CredentialsFile, CliError> {
        if self.read.is_none() {
            self.read = Some(read_credentials_file(&self.path, need)?);
        }
        Ok(self.read.as_ref().expect("read just above"))
    }
}

fn default_endpoint() -> String {
    format!("http://{}", crate::config::DEFAULT_LISTEN)
}

fn read_credentials_file(path: &Path, need: &str) -> Result<CredentialsFile, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::Unreachable(format!(
            "no credentials: looked for {need} in {} ({e}); give --access-key-id and --access-key-secret, set \
             OPENFC_ACCESS_KEY_ID and OPENFC_ACCESS_KEY_SECRET, or point --data-dir at the server's data directory",
            path.display()
        ))
    })?;
    serde_json::from_str(&text)
        .map_err(|e| CliError::Unreachable(format!("{} is not a credentials file: {e}", path.display())))
}

/// `http(s)://host[:port][/base]`; without a scheme, http for loopback names (a local openfc) and https
/// otherwise (as fc2 Python assumes).
pub fn parse_endpoint(text: &str) -> Result<Url, CliError> {
    let text = text.trim();
    let with_scheme = if text.contains("://") {
        text.to_owned()
    } else {
        let host = text.split([':', '/']).next().unwrap_or_default();
        let local = host == "localhost" || host.starts_with("127.") || text.starts_with("[::1]");
        format!("{}://{text}", if local { "http" } else { "https" })
    };
    let url = Url::parse(&with_scheme).map_err(|e| CliError::Usage(format!("endpoint '{text}': {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(CliError::Usage(format!("endpoint '{text}': give http://HOST[:PORT] or https://HOST[:PORT]")));
    }
    Ok(url)
}

/// Escapes a name for use as one path segment.
pub fn seg(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

/// A response, read whole.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn request_id(&self) -> String {
        self.header("x-fc-request-id").unwrap_or("-").to_owned()
    }

    /// The body as JSON (an error if the server answered something else).
    pub fn json(&self) -> Result<Value, CliError> {
        serde_json::from_slice(&self.body).map_err(|e| CliError::Server {
            status: self.status,
            code: "InvalidResponse".into(),
            message: format!("the answer is not JSON ({e}): {}", snippet(&self.body)),
            request_id: self.request_id(),
        })
    }

    /// A non-2xx answer as an error: FC's `ErrorCode`/`ErrorMessage` (or the Tea SDK's `Code`/`Message`),
    /// else the status and the start of the body (a proxy in between, a non-FC server).
    pub fn error(&self) -> CliError {
        let v: Value = serde_json::from_slice(&self.body).unwrap_or(Value::Null);
        let text = |keys: &[&str]| keys.iter().find_map(|k| v[*k].as_str()).map(str::to_owned);
        let request_id =
            self.header("x-fc-request-id").map(str::to_owned).or_else(|| text(&["RequestId", "requestId"]));
        match text(&["ErrorCode", "Code", "errorCode"]) {
            Some(code) => CliError::Server {
                status: self.status,
                code,
                message: text(&["ErrorMessage", "Message", "errorMessage"]).unwrap_or_default(),
                request_id: request_id.unwrap_or_else(|| "-".into()),
            },
            None => CliError::Server {
                status: self.status,
                code: String::new(),
                message: snippet(&self.body),
                request_id: request_id.unwrap_or_else(|| "-".into()),
            },
        }
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The start of a body, as text, for messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]).trim().to_owned();
    if text.is_empty() { "(empty body)".into() } else { text }
}

/// One request to send: a path below the API prefix, and what goes with it.
pub struct Call {
    pub method: Method,
    /// Below [`PREFIX`], segments already escaped with [`seg`].
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    /// Extra headers; the `x-fc-*` ones are signed.
    pub headers: Vec<(&'static str, String)>,
    pub content_type: &'static str,
    pub body: reqwest::Body,
}

impl Call {
    pub fn new(method: Method, path: String) -> Self {
        Self {
            method,
            path,
            query: Vec::new(),
            headers: Vec::new(),
            content_type: "application/json",
            body: reqwest::Body::from(Bytes::new()),
        }
    }

    pub fn json_body(mut self, body: &Value) -> Self {
        self.body = reqwest::Body::from(body.to_string());
        self
    }
}

pub struct Client {
    http: reqwest::Client,
    endpoint: Url,
    creds: Credentials,
}

impl Client {
    pub fn new(args: &ConnArgs) -> Result<Self, CliError> {
        let (endpoint, creds) = resolve(args)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| CliError::Unreachable(format!("cannot set up the HTTP client: {}", chain(&e))))?;
        Ok(Self { http, endpoint, creds })
    }

    /// Sends a call and reads the whole answer, whatever its status.
    pub async fn send(&self, call: Call) -> Result<Answer, CliError> {
        let url = self.url(&call);
        let headers = self.signed_headers(&call, &url);
        let mut req = self.http.request(call.method, url.clone()).body(call.body);
        for (name, value) in &headers {
            req = req.header(name.as_str(), value.as_str());
        }
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        Ok(Answer { status, headers, body })
    }

    /// The endpoint (and its base path), the API prefix, the call's path and query.
    fn url(&self, call: &Call) -> Url {
        let mut url = self.endpoint.clone();
        let base = self.endpoint.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}{PREFIX}{}", call.path));
        if !call.query.is_empty() {
            url.query_pairs_mut().extend_pairs(call.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// A GET to upgrade to a websocket (InstanceExec): `ws://`/`wss://` for `http://`/`https://`, signed as
    /// any call (the FC scheme signs the path, not the query); the upgrade headers are the connector's.
    pub fn websocket_url_and_headers(&self, call: &Call) -> (String, Vec<(String, String)>) {
        let url = self.url(call);
        let headers = self.signed_headers(call, &url);
        let text = url.as_str();
        let ws = match text.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}"),
            None => format!("ws://{}", text.strip_prefix("http://").unwrap_or(text)),
        };
        (ws, headers)
    }

    /// The error of a connection that never got an answer.
    pub fn unreachable_because(&self, why: &dyn std::error::Error) -> CliError {
        let host = self.endpoint.as_str().trim_end_matches('/');
        CliError::Unreachable(format!("cannot reach {host}: {}", chain(why)))
    }

    /// Sends a call and returns its JSON answer, or the server's error.
    pub async fn json(&self, call: Call) -> Result<Value, CliError> {
        let answer = self.send(call).await?;
        if !answer.ok() {
            return Err(answer.error());
        }
        answer.json()
    }

    /// Sends a call that answers no body (deletes), or the server's error.
    pub async fn empty(&self, call: Call) -> Result<(), CliError> {
        let answer = self.send(call).await?;
        if answer.ok() { Ok(()) } else { Err(answer.error()) }
    }

    /// `Date`, `Content-Type`, the `x-fc-*` headers and `Authorization` over them.
    fn signed_headers(&self, call: &Call, url: &Url) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = vec![
            ("date".into(), httpdate::fmt_http_date(SystemTime::now())),
            ("content-type".into(), call.content_type.into()),
        ];
        if let Some(account) = &self.creds.account_id {
            headers.push(("x-fc-account-id".into(), account.clone()));
        }
        if let Some(token) = &self.creds.security_token {
            headers.push(("x-fc-security-token".into(), token.clone()));
        }
        headers.extend(call.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())));
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let parts = RequestParts {
            method: call.method.as_str(),
            raw_path: url.path(),
            raw_query: url.query(),
            headers: &pairs,
            body_sha256_hex: EMPTY_SHA256,
        };
        let authorization = fc_authorization(&self.creds.access_key_id, &self.creds.secret, &parts);
        headers.push(("authorization".into(), authorization));
        headers
    }

    fn unreachable(&self, e: &reqwest::Error) -> CliError {
        self.unreachable_because(e)
    }
}

/// An error and its causes, `a: b: c` (reqwest's own message alone says little: "error sending request").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::KeyArgs;

    #[test]
    fn endpoints_get_a_scheme_by_host() {
        let cases = [
            ("http://127.0.0.1:9900", "http://127.0.0.1:9900/"),
            ("127.0.0.1:9900", "http://127.0.0.1:9900/"),
            ("localhost:9900/", "http://localhost:9900/"),
            ("[::1]:9900", "http://[::1]:9900/"),
            ("1234.cn-hangzhou.fc.aliyuncs.com", "https://1234.cn-hangzhou.fc.aliyuncs.com/"),
        ];
        for (given, want) in cases {
            assert_eq!(parse_endpoint(given).unwrap().as_str(), want, "{given}");
        }
        for bad in ["ftp://x", "http://", "http://a b"] {
            assert_eq!(parse_endpoint(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn segments_escape_everything_but_unreserved() {
        assert_eq!(seg("my-svc_1.x~"), "my-svc_1.x~");
        assert_eq!(seg("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn errors_read_fc_and_tea_shapes_and_fall_back_to_the_status() {
        let answer = |status: u16, body: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("x-fc-request-id", "rid".parse().unwrap());
            Answer { status, headers, body: Bytes::from(body.to_owned()) }
        };
        let fc = answer(404, r#"{"ErrorCode":"ServiceNotFound","ErrorMessage":"service 's' does not exist"}"#);
        assert_eq!(fc.error().to_string(), "ServiceNotFound: service 's' does not exist (request id: rid)");
        let tea = answer(403, r#"{"Code":"AccessDenied","Message":"no"}"#);
        assert_eq!(tea.error().to_string(), "AccessDenied: no (request id: rid)");
        let proxy = answer(502, "<html>Bad Gateway</html>");
        assert_eq!(proxy.error().to_string(), "HTTP 502: <html>Bad Gateway</html> (request id: rid)");
    }

    #[test]
    fn the_data_directory_gives_key_endpoint_and_account_and_flags_win() {
        if env("ALIBABA_CLOUD_ACCESS_KEY_ID").is_some() {
            return; // the caller's own Alibaba Cloud key would come before the file
        }
        let dir = tempfile::tempdir().unwrap();
        let file = serde_json::json!({"accountId": "1234", "accessKeyId": "AKF", "accessKeySecret": "s",
            "region": "cn-hangzhou", "endpoint": "http://127.0.0.1:4242"});
        std::fs::write(dir.path().join("credentials.json"), file.to_string()).unwrap();
        let args = ConnArgs { data_dir: Some(dir.path().into()), ..Default::default() };
        let (url, creds) = resolve(&args).unwrap();
        assert_eq!((url.as_str(), creds.access_key_id.as_str()), ("http://127.0.0.1:4242/", "AKF"));
        assert_eq!(creds.account_id.as_deref(), Some("1234"));
        // A key from flags: the file still names the endpoint, but its account is not the key's.
        let keys =
            KeyArgs { access_key_id: Some("AK".into()), access_key_secret: Some("x".into()), ..Default::default() };
        let flags = ConnArgs { keys, ..args.clone() };
        let (url, creds) = resolve(&flags).unwrap();
        assert_eq!(
            (url.as_str(), creds.access_key_id.as_str(), creds.account_id),
            ("http://127.0.0.1:4242/", "AK", None)
        );
        let elsewhere = ConnArgs { endpoint: Some("http://10.0.0.1:1".into()), ..args };
        assert_eq!(resolve(&elsewhere).unwrap().0.as_str(), "http://10.0.0.1:1/");
        let empty = tempfile::tempdir().unwrap();
        let none = ConnArgs { data_dir: Some(empty.path().into()), ..Default::default() };
        assert!(matches!(resolve(&none), Err(CliError::Unreachable(m)) if m.contains("no credentials")));
    }

    /// InstanceExec's upgrade: the endpoint's scheme turned into ws/wss, the query kept but not signed.
    #[test]
    fn websocket_requests_keep_the_base_path_and_sign_the_path_only() {
        let conn = |endpoint: &str| ConnArgs {
            endpoint: Some(endpoint.into()),
            keys: KeyArgs {
                access_key_id: Some("AK".into()),
                access_key_secret: Some("secret".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut call = Call::new(Method::GET, "/services/s/functions/f/instances/c-1/exec".into());
        call.query = vec![("command", "sh".into()), ("command", "-c".into()), ("command", "echo a b".into())];
        let (url, headers) = Client::new(&conn("http://127.0.0.1:1/base")).unwrap().websocket_url_and_headers(&call);
        assert_eq!(
            url,
            "ws://127.0.0.1:1/base/2016-08-15/services/s/functions/f/instances/c-1/exec?command=sh&command=-c&command=echo+a+b"
        );
        let (tls, _) = Client::new(&conn("https://fc.example.com")).unwrap().websocket_url_and_headers(&call);
        assert!(tls.starts_with("wss://fc.example.com/2016-08-15/services/"), "{tls}");
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let auth = pairs.iter().find(|(k, _)| *k == "authorization").unwrap().1;
        let parsed = openfc_auth::parse_authorization(auth).unwrap();
        let path = "/base/2016-08-15/services/s/functions/f/instances/c-1/exec";
        let other_query =
            openfc_auth::RequestHead { method: "GET", raw_path: path, raw_query: Some("command=ls"), headers: &pairs };
        let now = time::OffsetDateTime::now_utc();
        openfc_auth::verify_head(&parsed, &other_query, &SecretKey::new("secret".into()), now).unwrap();
    }

    /// The signature is the one openfc-auth's verifier (the server's) accepts.
    #[test]
    fn calls_are_signed_as_the_server_verifies() {
        let args = ConnArgs {
            endpoint: Some("http://127.0.0.1:1/base/".into()),
            keys: KeyArgs {
                access_key_id: Some("AK".into()),
                access_key_secret: Some("secret".into()),
                account_id: Some("1234".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let client = Client::new(&args).unwrap();
        let mut call = Call::new(Method::POST, format!("/services/{}/functions/f/invocations", seg("s")));
        call.headers.push(("X-Fc-Log-Type", "Tail".into()));
        call.query.push(("qualifier", "LATEST".into()));
        let mut url = client.endpoint.clone();
        url.set_path(&format!("/base{PREFIX}{}", call.path));
        url.query_pairs_mut().append_pair("qualifier", "LATEST");
        let headers = client.signed_headers(&call, &url);
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let auth = pairs.iter().find(|(k, _)| *k == "authorization").unwrap().1;
        let parsed = openfc_auth::parse_authorization(auth).unwrap();
        let head =
            openfc_auth::RequestHead { method: "POST", raw_path: url.path(), raw_query: url.query(), headers: &pairs };
        let now = time::OffsetDateTime::now_utc();
        openfc_auth::verify_head(&parsed, &head, &SecretKey::new("secret".into()), now).unwrap();
        assert!(pairs.contains(&("x-fc-account-id", "1234")) && pairs.contains(&("x-fc-log-type", "Tail")));
        let wrong = openfc_auth::verify_head(&parsed, &head, &SecretKey::new("other".into()), now);
        assert!(wrong.is_err());
    }
}
