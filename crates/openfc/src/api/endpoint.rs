//! Turning (method, path, query) into the FC operation it names: one `match` after the API-version prefix
//! (`/2016-08-15` and `/2021-04-06` are the same API). `svc.qualifier` path segments and `?qualifier=` both
//! carry a qualifier. Each endpoint knows its RAM action and resource ARN.

use openfc_core::CoreError;
use openfc_core::names::{FunctionName, Qualifier, ServiceName};
use percent_encoding::percent_decode_str;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V2016,
    V2021,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    GetAccountSettings,
    CreateService,
    ListServices,
    GetService { service: ServiceName, qualifier: Qualifier },
    UpdateService { service: ServiceName },
    DeleteService { service: ServiceName },
    CreateFunction { service: ServiceName },
    ListFunctions { service: ServiceName, qualifier: Qualifier },
    GetFunction { service: ServiceName, function: FunctionName, qualifier: Qualifier },
    UpdateFunction { service: ServiceName, function: FunctionName },
    DeleteFunction { service: ServiceName, function: FunctionName },
    GetFunctionCode { service: ServiceName, function: FunctionName, qualifier: Qualifier },
}

/// Why a path names no operation.
#[derive(Debug)]
pub enum ParseError {
    /// Unknown path or method: `PathNotSupported`.
    NotSupported,
    /// A known path with an invalid name or qualifier.
    Invalid(CoreError),
}

impl From<CoreError> for ParseError {
    fn from(e: CoreError) -> Self {
        ParseError::Invalid(e)
    }
}

/// Decoded query parameters, in wire order (`+` is a space).
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        let decode = |s: &str| percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
        Query(
            raw.unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(p), String::new()),
                })
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Splits `svc` or `svc.qualifier`; the path qualifier wins over `?qualifier=`.
fn service_segment(seg: &str, query: &Query) -> Result<(ServiceName, Qualifier), CoreError> {
    let (name, path_q) = match seg.split_once('.') {
        Some((n, q)) => (n, Some(q)),
        None => (seg, None),
    };
    let q = path_q.or_else(|| query.get("qualifier")).unwrap_or("");
    Ok((ServiceName::parse(name)?, Qualifier::parse(q)?))
}

/// Mutations address LATEST only.
fn unqualified(seg: &str, query: &Query) -> Result<ServiceName, CoreError> {
    let (service, q) = service_segment(seg, query)?;
    match q {
        Qualifier::Latest => Ok(service),
        other => Err(CoreError::invalid(format!("qualifier '{other}' is not allowed here: only LATEST can be changed"))),
    }
}

pub fn parse(method: &str, path: &str, query: &Query) -> Result<(ApiVersion, Endpoint), ParseError> {
    let (version, rest) = if let Some(r) = path.strip_prefix("/2016-08-15/") {
        (ApiVersion::V2016, r)
    } else if let Some(r) = path.strip_prefix("/2021-04-06/") {
        (ApiVersion::V2021, r)
    } else {
        return Err(ParseError::NotSupported);
    };
    let segs: Vec<String> = rest
        .trim_end_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    use Endpoint::*;
    let endpoint = match (method, segs.as_slice()) {
        ("GET", ["account-settings"]) => GetAccountSettings,
        ("POST", ["services"]) => CreateService,
        ("GET", ["services"]) => ListServices,
        ("GET", ["services", s]) => {
            let (service, qualifier) = service_segment(s, query)?;
            GetService { service, qualifier }
        }
        ("PUT", ["services", s]) => UpdateService { service: unqualified(s, query)? },
        ("DELETE", ["services", s]) => DeleteService { service: unqualified(s, query)? },
        ("POST", ["services", s, "functions"]) => CreateFunction { service: unqualified(s, query)? },
        ("GET", ["services", s, "functions"]) => {
            let (service, qualifier) = service_segment(s, query)?;
            ListFunctions { service, qualifier }
        }
        ("GET", ["services", s, "functions", f]) => {
            let (service, qualifier) = service_segment(s, query)?;
            GetFunction { service, function: FunctionName::parse(f)?, qualifier }
        }
        ("PUT", ["services", s, "functions", f]) => {
            UpdateFunction { service: unqualified(s, query)?, function: FunctionName::parse(f)? }
        }
        ("DELETE", ["services", s, "functions", f]) => {
            DeleteFunction { service: unqualified(s, query)?, function: FunctionName::parse(f)? }
        }
        ("GET", ["services", s, "functions", f, "code"]) => {
            let (service, qualifier) = service_segment(s, query)?;
            GetFunctionCode { service, function: FunctionName::parse(f)?, qualifier }
        }
        _ => return Err(ParseError::NotSupported),
    };
    Ok((version, endpoint))
}

impl Endpoint {
    /// The API name, which is also the RAM action after `fc:`.
    pub fn action(&self) -> &'static str {
        use Endpoint::*;
        match self {
            GetAccountSettings => "GetAccountSettings",
            CreateService => "CreateService",
            ListServices => "ListServices",
            GetService { .. } => "GetService",
            UpdateService { .. } => "UpdateService",
            DeleteService { .. } => "DeleteService",
            CreateFunction { .. } => "CreateFunction",
            ListFunctions { .. } => "ListFunctions",
            GetFunction { .. } => "GetFunction",
            UpdateFunction { .. } => "UpdateFunction",
            DeleteFunction { .. } => "DeleteFunction",
            GetFunctionCode { .. } => "GetFunctionCode",
        }
    }

    /// The resource ARN the action applies to (spec §9).
    pub fn resource(&self, region: &str, account: &str) -> String {
        use Endpoint::*;
        let base = format!("acs:fc:{region}:{account}");
        match self {
            GetAccountSettings | CreateService | ListServices => format!("{base}:services/*"),
            GetService { service, .. }
            | UpdateService { service }
            | DeleteService { service }
            | CreateFunction { service }
            | ListFunctions { service, .. } => format!("{base}:services/{service}"),
            GetFunction { service, function, .. }
            | UpdateFunction { service, function }
            | DeleteFunction { service, function }
            | GetFunctionCode { service, function, .. } => format!("{base}:services/{service}/functions/{function}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: &str, url: &str, expected: Option<(&str, &str)>) {
        let (path, query) = url.split_once('?').map_or((url, None), |(p, q)| (p, Some(q)));
        let got = parse(method, path, &Query::parse(query));
        match (got, expected) {
            (Ok((_, e)), Some((action, debug))) => {
                assert_eq!(e.action(), action, "{method} {url}");
                assert_eq!(format!("{e:?}").contains(debug), true, "{method} {url}: {e:?} lacks {debug}");
            }
            (Err(ParseError::NotSupported), None) => {}
            (got, want) => panic!("{method} {url}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn endpoint_table() {
        for v in ["2016-08-15", "2021-04-06"] {
            check("GET", &format!("/{v}/account-settings"), Some(("GetAccountSettings", "")));
            check("POST", &format!("/{v}/services"), Some(("CreateService", "")));
            check("GET", &format!("/{v}/services?limit=2"), Some(("ListServices", "")));
            check("GET", &format!("/{v}/services/s"), Some(("GetService", "Latest")));
            check("GET", &format!("/{v}/services/s.LATEST"), Some(("GetService", "Latest")));
            check("GET", &format!("/{v}/services/s.3"), Some(("GetService", "Version(3)")));
            check("GET", &format!("/{v}/services/s?qualifier=prod"), Some(("GetService", "Alias(\"prod\")")));
            check("GET", &format!("/{v}/services/s.1?qualifier=prod"), Some(("GetService", "Version(1)")));
            check("PUT", &format!("/{v}/services/s"), Some(("UpdateService", "")));
            check("DELETE", &format!("/{v}/services/s"), Some(("DeleteService", "")));
            check("POST", &format!("/{v}/services/s/functions"), Some(("CreateFunction", "")));
            check("GET", &format!("/{v}/services/s.prod/functions"), Some(("ListFunctions", "Alias")));
            check("GET", &format!("/{v}/services/s/functions/f"), Some(("GetFunction", "\"f\"")));
            check("GET", &format!("/{v}/services/s/functions/f/"), Some(("GetFunction", "\"f\"")));
            check("PUT", &format!("/{v}/services/s/functions/f"), Some(("UpdateFunction", "")));
            check("DELETE", &format!("/{v}/services/s/functions/f"), Some(("DeleteFunction", "")));
            check("GET", &format!("/{v}/services/s/functions/f/code?x-fc-trace-id=t"), Some(("GetFunctionCode", "")));
            check("PATCH", &format!("/{v}/services/s"), None);
            check("GET", &format!("/{v}/nothing"), None);
            check("GET", &format!("/{v}/services/s/functions/f/unknown"), None);
        }
        check("GET", "/2015-01-01/services", None);
        check("GET", "/services", None);
    }

    #[test]
    fn invalid_names_and_qualified_mutations_are_errors() {
        let q = Query::parse(None);
        assert!(matches!(parse("GET", "/2016-08-15/services/9bad", &q), Err(ParseError::Invalid(_))));
        assert!(matches!(parse("PUT", "/2016-08-15/services/s.1", &q), Err(ParseError::Invalid(_))));
        let q = Query::parse(Some("qualifier=1"));
        assert!(matches!(parse("POST", "/2021-04-06/services/s/functions", &q), Err(ParseError::Invalid(_))));
    }

    #[test]
    fn queries_decode() {
        let q = Query::parse(Some("prefix=a+b%2Bc&flag&x=1&x=2"));
        assert_eq!(q.get("prefix"), Some("a b+c"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("x"), Some("1"));
        assert_eq!(q.get("none"), None);
    }

    #[test]
    fn resources() {
        let (_, e) = parse("GET", "/2016-08-15/services/s/functions/f/code", &Query::parse(None)).unwrap();
        assert_eq!(e.resource("cn-hangzhou", "123"), "acs:fc:cn-hangzhou:123:services/s/functions/f");
    }
}
