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
    /// The Node.js SDK's `getAccountConfigs` (undocumented): openfc's limits.
    GetAccountConfigs,
    /// The Node.js SDK's `withoutCodeLimit` upload path and `getTempBucketToken` (undocumented): they upload to
    /// Alibaba Cloud OSS itself, which openfc cannot offer; refused with what to do instead.
    GetTempCodeBucketToken,
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
    InvokeFunction { service: ServiceName, function: FunctionName, qualifier: Qualifier },
    /// openfc extension: the function's instance output.
    GetFunctionLogs { service: ServiceName, function: FunctionName },
    PublishServiceVersion { service: ServiceName },
    ListServiceVersions { service: ServiceName },
    DeleteServiceVersion { service: ServiceName, version: String },
    CreateAlias { service: ServiceName },
    ListAliases { service: ServiceName },
    GetAlias { service: ServiceName, alias: String },
    UpdateAlias { service: ServiceName, alias: String },
    DeleteAlias { service: ServiceName, alias: String },
    CreateTrigger { service: ServiceName, function: FunctionName },
    ListTriggers { service: ServiceName, function: FunctionName },
    GetTrigger { service: ServiceName, function: FunctionName, trigger: String },
    UpdateTrigger { service: ServiceName, function: FunctionName, trigger: String },
    DeleteTrigger { service: ServiceName, function: FunctionName, trigger: String },
    CreateCustomDomain,
    ListCustomDomains,
    GetCustomDomain { domain: String },
    UpdateCustomDomain { domain: String },
    DeleteCustomDomain { domain: String },
    PutProvisionConfig { service: ServiceName, function: FunctionName, qualifier: Qualifier },
    GetProvisionConfig { service: ServiceName, function: FunctionName, qualifier: Qualifier },
    ListInstances { service: ServiceName, function: FunctionName, qualifier: Qualifier },
    /// A websocket session running a command in one instance (`instance` as ListInstances names it).
    InstanceExec { service: ServiceName, function: FunctionName, qualifier: Qualifier, instance: String },
    ListProvisionConfigs,
    PutFunctionOnDemandConfig { service: ServiceName, function: FunctionName, qualifier: Qualifier },
    GetFunctionOnDemandConfig { service: ServiceName, function: FunctionName, qualifier: Qualifier },
    DeleteFunctionOnDemandConfig { service: ServiceName, function: FunctionName, qualifier: Qualifier },
    ListOnDemandConfigs,
    PutFunctionAsyncInvokeConfig { service: ServiceName, function: FunctionName, qualifier: Qualifier },
    GetFunctionAsyncInvokeConfig { service: ServiceName, function: FunctionName, qualifier: Qualifier },
    DeleteFunctionAsyncInvokeConfig { service: ServiceName, function: FunctionName, qualifier: Qualifier },
    ListFunctionAsyncInvokeConfigs { service: ServiceName, function: FunctionName },
    ListStatefulAsyncInvocations { service: ServiceName, function: FunctionName, qualifier: Qualifier },
    GetStatefulAsyncInvocation { service: ServiceName, function: FunctionName, qualifier: Qualifier, id: String },
    StopStatefulAsyncInvocation { service: ServiceName, function: FunctionName, qualifier: Qualifier, id: String },
    /// openfc's own: enqueue a finished invocation's payload again.
    RedriveStatefulAsyncInvocation { service: ServiceName, function: FunctionName, qualifier: Qualifier, id: String },
    ListStatefulAsyncInvocationFunctions,
    CreateLayerVersion { layer: String },
    ListLayers,
    ListLayerVersions { layer: String },
    GetLayerVersion { layer: String, version: String },
    GetLayerVersionByArn { arn: String },
    DeleteLayerVersion { layer: String, version: String },
    PutLayerAcl { layer: String },
    TagResource,
    UntagResource,
    GetResourceTags,
    ListTaggedResources,
    /// openfc has no reserved capacity: always an empty list.
    ListReservedCapacities,
    /// VPC bindings and event sources are stored and listed, with no effect (see `openfc_core::bindings`).
    CreateVpcBinding { service: ServiceName },
    ListVpcBindings { service: ServiceName },
    DeleteVpcBinding { service: ServiceName, vpc_id: String },
    RegisterEventSource { service: ServiceName, function: FunctionName, qualifier: Qualifier },
    ListEventSources { service: ServiceName, function: FunctionName, qualifier: Qualifier },
    DeregisterEventSource { service: ServiceName, function: FunctionName, qualifier: Qualifier, source_arn: String },
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

    /// A list parameter sent repeated (`k=a&k=b`) or numbered (`k.1=a&k.2=b`, as the 2021 SDK sends lists).
    pub fn list(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| {
                k == key || k.strip_prefix(key).and_then(|r| r.strip_prefix('.')).is_some_and(|n| n.parse::<u32>().is_ok())
            })
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// ListServices' `tag_<key>=<value>` filters.
    pub fn tag_filters(&self) -> Vec<(String, String)> {
        self.0.iter().filter_map(|(k, v)| k.strip_prefix("tag_").map(|t| (t.to_owned(), v.clone()))).collect()
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
        other => Err(CoreError::invalid_value("Qualifier", "LATEST: only LATEST can be changed", other)),
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
        ("GET", ["accountConfigs"]) => GetAccountConfigs,
        ("GET", ["tempBucketToken"]) => GetTempCodeBucketToken,
        ("GET", ["services", _, "tempCodeBucketToken"]) => GetTempCodeBucketToken,
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
        ("POST", ["services", s, "functions", f, "invocations"]) => {
            let (service, qualifier) = service_segment(s, query)?;
            InvokeFunction { service, function: FunctionName::parse(f)?, qualifier }
        }
        ("POST", ["services", s, "versions"]) => PublishServiceVersion { service: unqualified(s, query)? },
        ("GET", ["services", s, "versions"]) => ListServiceVersions { service: unqualified(s, query)? },
        ("DELETE", ["services", s, "versions", v]) => {
            DeleteServiceVersion { service: unqualified(s, query)?, version: (*v).to_owned() }
        }
        ("POST", ["services", s, "aliases"]) => CreateAlias { service: unqualified(s, query)? },
        ("GET", ["services", s, "aliases"]) => ListAliases { service: unqualified(s, query)? },
        ("GET", ["services", s, "aliases", a]) => GetAlias { service: unqualified(s, query)?, alias: (*a).to_owned() },
        ("PUT", ["services", s, "aliases", a]) => UpdateAlias { service: unqualified(s, query)?, alias: (*a).to_owned() },
        ("DELETE", ["services", s, "aliases", a]) => {
            DeleteAlias { service: unqualified(s, query)?, alias: (*a).to_owned() }
        }
        ("POST", ["services", s, "functions", f, "triggers"]) => {
            CreateTrigger { service: unqualified(s, query)?, function: FunctionName::parse(f)? }
        }
        ("GET", ["services", s, "functions", f, "triggers"]) => {
            ListTriggers { service: unqualified(s, query)?, function: FunctionName::parse(f)? }
        }
        ("GET" | "PUT" | "DELETE", ["services", s, "functions", f, "triggers", t]) => {
            let (service, function, trigger) = (unqualified(s, query)?, FunctionName::parse(f)?, (*t).to_owned());
            match method {
                "GET" => GetTrigger { service, function, trigger },
                "PUT" => UpdateTrigger { service, function, trigger },
                _ => DeleteTrigger { service, function, trigger },
            }
        }
        ("POST", ["custom-domains"]) => CreateCustomDomain,
        ("GET", ["custom-domains"]) => ListCustomDomains,
        ("GET", ["custom-domains", d]) => GetCustomDomain { domain: (*d).to_owned() },
        ("PUT", ["custom-domains", d]) => UpdateCustomDomain { domain: (*d).to_owned() },
        ("DELETE", ["custom-domains", d]) => DeleteCustomDomain { domain: (*d).to_owned() },
        ("GET", ["stateful-async-invocation-functions"]) => ListStatefulAsyncInvocationFunctions,
        ("GET", ["services", s, "functions", f, "stateful-async-invocations"]) => {
            let (service, qualifier) = service_segment(s, query)?;
            ListStatefulAsyncInvocations { service, function: FunctionName::parse(f)?, qualifier }
        }
        (m @ ("GET" | "PUT"), ["services", s, "functions", f, "stateful-async-invocations", id]) => {
            let (service, qualifier) = service_segment(s, query)?;
            let (function, id) = (FunctionName::parse(f)?, (*id).to_owned());
            if m == "GET" {
                GetStatefulAsyncInvocation { service, function, qualifier, id }
            } else {
                StopStatefulAsyncInvocation { service, function, qualifier, id }
            }
        }
        ("POST", ["services", s, "functions", f, "stateful-async-invocations", id, "redrive"]) => {
            let (service, qualifier) = service_segment(s, query)?;
            RedriveStatefulAsyncInvocation { service, function: FunctionName::parse(f)?, qualifier, id: (*id).to_owned() }
        }
        ("GET", ["reservedCapacities" | "reserved-capacities"]) => ListReservedCapacities,
        ("POST", ["services", s, "bindings"]) => CreateVpcBinding { service: unqualified(s, query)? },
        ("GET", ["services", s, "bindings"]) => ListVpcBindings { service: unqualified(s, query)? },
        ("DELETE", ["services", s, "bindings", v]) => {
            DeleteVpcBinding { service: unqualified(s, query)?, vpc_id: (*v).to_owned() }
        }
        (m @ ("POST" | "GET"), ["services", s, "functions", f, "event-sources"]) => {
            let (service, qualifier) = service_segment(s, query)?;
            let function = FunctionName::parse(f)?;
            if m == "POST" {
                RegisterEventSource { service, function, qualifier }
            } else {
                ListEventSources { service, function, qualifier }
            }
        }
        // The ARN is one URL-encoded segment as the SDKs send it; an unencoded one (its `/`s) is rejoined.
        ("DELETE", ["services", s, "functions", f, "event-sources", arn @ ..]) if !arn.is_empty() => {
            let (service, qualifier) = service_segment(s, query)?;
            DeregisterEventSource { service, function: FunctionName::parse(f)?, qualifier, source_arn: arn.join("/") }
        }
        ("GET", ["services", s, "functions", f, "instances", instance, "exec"]) => {
            let (service, qualifier) = service_segment(s, query)?;
            InstanceExec { service, function: FunctionName::parse(f)?, qualifier, instance: (*instance).to_owned() }
        }
        ("GET", ["provision-configs"]) => ListProvisionConfigs,
        ("GET", ["on-demand-configs"]) => ListOnDemandConfigs,
        (m @ ("GET" | "PUT" | "DELETE"), ["services", s, "functions", f, config]) => {
            let (service, qualifier) = service_segment(s, query)?;
            let function = FunctionName::parse(f)?;
            match (m, *config) {
                ("PUT", "provision-config") => PutProvisionConfig { service, function, qualifier },
                ("GET", "provision-config") => GetProvisionConfig { service, function, qualifier },
                ("GET", "instances") => ListInstances { service, function, qualifier },
                ("PUT", "on-demand-config") => PutFunctionOnDemandConfig { service, function, qualifier },
                ("GET", "on-demand-config") => GetFunctionOnDemandConfig { service, function, qualifier },
                ("DELETE", "on-demand-config") => DeleteFunctionOnDemandConfig { service, function, qualifier },
                ("PUT", "async-invoke-config") => PutFunctionAsyncInvokeConfig { service, function, qualifier },
                ("GET", "async-invoke-config") => GetFunctionAsyncInvokeConfig { service, function, qualifier },
                ("DELETE", "async-invoke-config") => DeleteFunctionAsyncInvokeConfig { service, function, qualifier },
                ("GET", "async-invoke-configs") => ListFunctionAsyncInvokeConfigs { service, function },
                ("GET", "logs") => GetFunctionLogs { service, function },
                _ => return Err(ParseError::NotSupported),
            }
        }
        ("POST", ["layers", l, "versions"]) => CreateLayerVersion { layer: (*l).to_owned() },
        ("GET", ["layers"]) => ListLayers,
        ("GET", ["layers", l, "versions"]) => ListLayerVersions { layer: (*l).to_owned() },
        ("GET", ["layers", l, "versions", v]) => GetLayerVersion { layer: (*l).to_owned(), version: (*v).to_owned() },
        ("DELETE", ["layers", l, "versions", v]) => {
            DeleteLayerVersion { layer: (*l).to_owned(), version: (*v).to_owned() }
        }
        ("GET", ["layerarn", arn]) => GetLayerVersionByArn { arn: (*arn).to_owned() },
        ("PUT", ["layers", l, "acl"]) => PutLayerAcl { layer: (*l).to_owned() },
        ("POST", ["tag"]) => TagResource,
        ("DELETE" | "PUT", ["tag"]) => UntagResource,
        ("GET", ["tag"]) => GetResourceTags,
        ("GET", ["tags"]) => ListTaggedResources,
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
            GetAccountConfigs => "GetAccountConfigs",
            GetTempCodeBucketToken => "GetTempCodeBucketToken",
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
            InvokeFunction { .. } => "InvokeFunction",
            GetFunctionLogs { .. } => "GetFunctionLogs",
            PublishServiceVersion { .. } => "PublishServiceVersion",
            ListServiceVersions { .. } => "ListServiceVersions",
            DeleteServiceVersion { .. } => "DeleteServiceVersion",
            CreateAlias { .. } => "CreateAlias",
            ListAliases { .. } => "ListAliases",
            GetAlias { .. } => "GetAlias",
            UpdateAlias { .. } => "UpdateAlias",
            DeleteAlias { .. } => "DeleteAlias",
            CreateTrigger { .. } => "CreateTrigger",
            ListTriggers { .. } => "ListTriggers",
            GetTrigger { .. } => "GetTrigger",
            UpdateTrigger { .. } => "UpdateTrigger",
            DeleteTrigger { .. } => "DeleteTrigger",
            CreateCustomDomain => "CreateCustomDomain",
            ListCustomDomains => "ListCustomDomains",
            GetCustomDomain { .. } => "GetCustomDomain",
            UpdateCustomDomain { .. } => "UpdateCustomDomain",
            DeleteCustomDomain { .. } => "DeleteCustomDomain",
            PutProvisionConfig { .. } => "PutProvisionConfig",
            GetProvisionConfig { .. } => "GetProvisionConfig",
            ListInstances { .. } => "ListInstances",
            InstanceExec { .. } => "InstanceExec",
            ListProvisionConfigs => "ListProvisionConfigs",
            PutFunctionOnDemandConfig { .. } => "PutFunctionOnDemandConfig",
            GetFunctionOnDemandConfig { .. } => "GetFunctionOnDemandConfig",
            DeleteFunctionOnDemandConfig { .. } => "DeleteFunctionOnDemandConfig",
            ListOnDemandConfigs => "ListOnDemandConfigs",
            PutFunctionAsyncInvokeConfig { .. } => "PutFunctionAsyncInvokeConfig",
            GetFunctionAsyncInvokeConfig { .. } => "GetFunctionAsyncInvokeConfig",
            DeleteFunctionAsyncInvokeConfig { .. } => "DeleteFunctionAsyncInvokeConfig",
            ListFunctionAsyncInvokeConfigs { .. } => "ListFunctionAsyncInvokeConfigs",
            ListStatefulAsyncInvocations { .. } => "ListStatefulAsyncInvocations",
            GetStatefulAsyncInvocation { .. } => "GetStatefulAsyncInvocation",
            StopStatefulAsyncInvocation { .. } => "StopStatefulAsyncInvocation",
            RedriveStatefulAsyncInvocation { .. } => "RedriveStatefulAsyncInvocation",
            ListStatefulAsyncInvocationFunctions => "ListStatefulAsyncInvocationFunctions",
            CreateLayerVersion { .. } => "CreateLayerVersion",
            ListLayers => "ListLayers",
            ListLayerVersions { .. } => "ListLayerVersions",
            GetLayerVersion { .. } => "GetLayerVersion",
            GetLayerVersionByArn { .. } => "GetLayerVersionByArn",
            DeleteLayerVersion { .. } => "DeleteLayerVersion",
            PutLayerAcl { .. } => "PutLayerACL",
            TagResource => "TagResource",
            UntagResource => "UntagResource",
            GetResourceTags => "GetResourceTags",
            ListTaggedResources => "ListTaggedResources",
            ListReservedCapacities => "ListReservedCapacities",
            CreateVpcBinding { .. } => "CreateVpcBinding",
            ListVpcBindings { .. } => "ListVpcBindings",
            DeleteVpcBinding { .. } => "DeleteVpcBinding",
            RegisterEventSource { .. } => "RegisterEventSource",
            ListEventSources { .. } => "ListEventSources",
            DeregisterEventSource { .. } => "DeregisterEventSource",
        }
    }

    /// The resource ARN the action applies to (spec §9).
    pub fn resource(&self, region: &str, account: &str) -> String {
        use Endpoint::*;
        let base = format!("acs:fc:{region}:{account}");
        match self {
            GetAccountSettings | GetAccountConfigs | GetTempCodeBucketToken | CreateService | ListServices | ListProvisionConfigs | ListOnDemandConfigs
            | ListStatefulAsyncInvocationFunctions
            | ListReservedCapacities
            | TagResource | UntagResource | GetResourceTags | ListTaggedResources => format!("{base}:services/*"),
            GetService { service, .. }
            | UpdateService { service }
            | DeleteService { service }
            | CreateFunction { service }
            | ListFunctions { service, .. }
            | ListAliases { service }
            | CreateAlias { service }
            | ListServiceVersions { service }
            | PublishServiceVersion { service }
            | CreateVpcBinding { service }
            | ListVpcBindings { service } => format!("{base}:services/{service}"),
            DeleteVpcBinding { service, vpc_id } => format!("{base}:services/{service}/bindings/{vpc_id}"),
            DeleteServiceVersion { service, version } => format!("{base}:services/{service}/versions/{version}"),
            GetAlias { service, alias } | UpdateAlias { service, alias } | DeleteAlias { service, alias } => {
                format!("{base}:services/{service}/aliases/{alias}")
            }
            GetFunction { service, function, .. }
            | UpdateFunction { service, function }
            | DeleteFunction { service, function }
            | GetFunctionCode { service, function, .. }
            | CreateTrigger { service, function }
            | ListTriggers { service, function }
            | ListFunctionAsyncInvokeConfigs { service, function }
            | GetFunctionLogs { service, function } => {
                format!("{base}:services/{service}/functions/{function}")
            }
            PutProvisionConfig { service, function, qualifier }
            | InvokeFunction { service, function, qualifier }
            | GetProvisionConfig { service, function, qualifier }
            | ListInstances { service, function, qualifier }
            | InstanceExec { service, function, qualifier, .. }
            | PutFunctionOnDemandConfig { service, function, qualifier }
            | GetFunctionOnDemandConfig { service, function, qualifier }
            | DeleteFunctionOnDemandConfig { service, function, qualifier }
            | PutFunctionAsyncInvokeConfig { service, function, qualifier }
            | GetFunctionAsyncInvokeConfig { service, function, qualifier }
            | DeleteFunctionAsyncInvokeConfig { service, function, qualifier }
            | ListStatefulAsyncInvocations { service, function, qualifier }
            | RegisterEventSource { service, function, qualifier }
            | ListEventSources { service, function, qualifier }
            | DeregisterEventSource { service, function, qualifier, .. } => {
                format!("{base}:services/{service}.{qualifier}/functions/{function}")
            }
            GetStatefulAsyncInvocation { service, function, qualifier, id }
            | StopStatefulAsyncInvocation { service, function, qualifier, id }
            | RedriveStatefulAsyncInvocation { service, function, qualifier, id } => {
                format!("{base}:services/{service}.{qualifier}/functions/{function}/stateful-async-invocations/{id}")
            }
            GetTrigger { service, function, trigger }
            | UpdateTrigger { service, function, trigger }
            | DeleteTrigger { service, function, trigger } => {
                format!("{base}:services/{service}/functions/{function}/triggers/{trigger}")
            }
            CreateCustomDomain | ListCustomDomains => format!("{base}:custom-domains/*"),
            GetCustomDomain { domain } | UpdateCustomDomain { domain } | DeleteCustomDomain { domain } => {
                format!("{base}:custom-domains/{domain}")
            }
            ListLayers => format!("{base}:layers/*"),
            CreateLayerVersion { layer } | ListLayerVersions { layer } | PutLayerAcl { layer } => {
                format!("{base}:layers/{layer}")
            }
            GetLayerVersion { layer, version } | DeleteLayerVersion { layer, version } => {
                format!("{base}:layers/{layer}/versions/{version}")
            }
            GetLayerVersionByArn { arn } => arn.clone(),
        }
    }
}

#[cfg(test)]
#[path = "endpoint_tests.rs"]
mod tests;
#[cfg(test)]
#[path = "fuzz_endpoint.rs"]
mod fuzz;
