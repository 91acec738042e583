//! Functions (spec §5.3): the request shape, validation, FC's defaults and the response.
//! The request body is split first (`parse_function_request`): the possibly huge `code.zipFile` stays a
//! borrowed slice of the body, so a 100 MB package is never copied into a JSON tree.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::{CoreError, CoreResult};
use crate::ports::FunctionRecord;
use crate::service::{max_len, replace};
use crate::wire::lenient::{Field, Shape, from_value};

static STRINGS: Shape = Shape::ArrayOf(&Shape::Any);
static CONTAINER: Shape = Shape::Object(&[
    Field("image", &Shape::Any),
    Field("command", &Shape::Any),
    Field("args", &Shape::Any),
    Field("accelerationType", &Shape::Any),
    Field("instanceID", &Shape::Any),
    Field("webServerMode", &Shape::Any),
]);
static CUSTOM_RUNTIME: Shape = Shape::Object(&[Field("command", &STRINGS), Field("args", &STRINGS)]);
static HOOK: Shape = Shape::Object(&[Field("handler", &Shape::Any), Field("timeout", &Shape::Any)]);
static LIFECYCLE: Shape = Shape::Object(&[Field("preFreeze", &HOOK), Field("preStop", &HOOK)]);
static DNS_OPTION: Shape = Shape::Object(&[Field("name", &Shape::Any), Field("value", &Shape::Any)]);
static DNS: Shape = Shape::Object(&[
    Field("nameServers", &STRINGS),
    Field("searches", &STRINGS),
    Field("dnsOptions", &Shape::ArrayOf(&DNS_OPTION)),
]);
static HEALTH: Shape = Shape::Object(&[
    Field("httpGetUrl", &Shape::Any),
    Field("initialDelaySeconds", &Shape::Any),
    Field("periodSeconds", &Shape::Any),
    Field("timeoutSeconds", &Shape::Any),
    Field("failureThreshold", &Shape::Any),
    Field("successThreshold", &Shape::Any),
]);

/// CreateFunction / UpdateFunction body, without `code` (split off before normalisation).
pub static FUNCTION_SHAPE: Shape = Shape::Object(&[
    Field("functionName", &Shape::Any),
    Field("runtime", &Shape::Any),
    Field("handler", &Shape::Any),
    Field("customContainerConfig", &CONTAINER),
    Field("customRuntimeConfig", &CUSTOM_RUNTIME),
    Field("caPort", &Shape::Any),
    Field("description", &Shape::Any),
    Field("memorySize", &Shape::Any),
    Field("timeout", &Shape::Any),
    Field("initializer", &Shape::Any),
    Field("initializationTimeout", &Shape::Any),
    Field("environmentVariables", &Shape::MapOf(&Shape::Any)),
    Field("instanceConcurrency", &Shape::Any),
    Field("instanceSoftConcurrency", &Shape::Any),
    Field("instanceType", &Shape::Any),
    Field("instanceLifecycleConfig", &LIFECYCLE),
    Field("layers", &STRINGS),
    Field("customDNS", &DNS),
    Field("customHealthCheckConfig", &HEALTH),
    Field("cpu", &Shape::Any),
    Field("diskSize", &Shape::Any),
    Field("gpuMemorySize", &Shape::Any),
]);

/// Runtime identifiers FC 2.0 accepts (spec §8.5), current and deprecated.
pub const RUNTIMES: &[&str] = &[
    "nodejs20", "nodejs18", "nodejs16", "nodejs14", "nodejs12", "nodejs10", "nodejs8", "nodejs6", "nodejs4.4",
    "python3.12", "python3.10", "python3.9", "python3", "python2.7", "java11", "java8", "php7.2", "dotnetcore3.1",
    "dotnetcore2.1", "go1", "custom.debian11", "custom.debian10", "custom", "custom-container",
];
const INSTANCE_TYPES: &[&str] = &["e1", "c1", "fc.gpu.tesla.1", "fc.gpu.ampere.1", "g1"];
const ENV_TOTAL_MAX: usize = 4096;

/// `customContainerConfig` (containers.md §1.1). `command` and `args` are strings holding a JSON array, echoed
/// byte for byte; `webServerMode` absent means `true`, `accelerationType` absent is echoed as `Default`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct CustomContainerConfig {
    pub image: String,
    pub command: String,
    pub args: String,
    pub acceleration_type: String,
    #[serde(rename = "instanceID")]
    pub instance_id: String,
    pub web_server_mode: bool,
}

impl Default for CustomContainerConfig {
    fn default() -> Self {
        CustomContainerConfig {
            image: String::new(),
            command: String::new(),
            args: String::new(),
            acceleration_type: "Default".into(),
            instance_id: String::new(),
            web_server_mode: true,
        }
    }
}

impl CustomContainerConfig {
    /// `command` as an argv (`None` when absent: `""`, `"[]"` and `null` mean absent).
    pub fn command_argv(&self) -> CoreResult<Option<Vec<String>>> {
        json_argv("CustomContainerConfig.Command", &self.command)
    }

    pub fn args_argv(&self) -> CoreResult<Option<Vec<String>>> {
        json_argv("CustomContainerConfig.Args", &self.args)
    }
}

/// A string holding a JSON array of strings; empty, `null` and `[]` read as absent.
fn json_argv(field: &str, text: &str) -> CoreResult<Option<Vec<String>>> {
    let text = text.trim();
    if text.is_empty() || text == "null" {
        return Ok(None);
    }
    let argv: Vec<String> = serde_json::from_str(text)
        .map_err(|_| CoreError::invalid_value(field, "a JSON array of strings", text))?;
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(CoreError::invalid_value(field, "strings without NUL characters", text.escape_debug()));
    }
    Ok(if argv.is_empty() { None } else { Some(argv) })
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CustomRuntimeConfig {
    pub command: Vec<String>,
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LifecycleHook {
    pub handler: String,
    pub timeout: i64,
}

impl Default for LifecycleHook {
    fn default() -> Self {
        LifecycleHook { handler: String::new(), timeout: 3 }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct InstanceLifecycleConfig {
    pub pre_freeze: LifecycleHook,
    pub pre_stop: LifecycleHook,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DnsOption {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct CustomDns {
    pub name_servers: Vec<String>,
    pub searches: Vec<String>,
    pub dns_options: Vec<DnsOption>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct HealthCheckConfig {
    pub http_get_url: String,
    pub initial_delay_seconds: i64,
    pub period_seconds: i64,
    pub timeout_seconds: i64,
    pub failure_threshold: i64,
    pub success_threshold: i64,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            http_get_url: String::new(),
            initial_delay_seconds: 0,
            period_seconds: 3,
            timeout_seconds: 1,
            failure_threshold: 3,
            success_threshold: 1,
        }
    }
}

/// Every settable field of a function but its code; `None` = not given.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FunctionFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_name: Option<String>,
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub custom_container_config: Option<CustomContainerConfig>,
    pub custom_runtime_config: Option<CustomRuntimeConfig>,
    pub ca_port: Option<i64>,
    pub description: Option<String>,
    pub memory_size: Option<i64>,
    pub timeout: Option<i64>,
    pub initializer: Option<String>,
    pub initialization_timeout: Option<i64>,
    pub environment_variables: Option<BTreeMap<String, String>>,
    pub instance_concurrency: Option<i64>,
    pub instance_soft_concurrency: Option<i64>,
    pub instance_type: Option<String>,
    pub instance_lifecycle_config: Option<InstanceLifecycleConfig>,
    pub layers: Option<Vec<String>>,
    #[serde(rename = "customDNS")]
    pub custom_dns: Option<CustomDns>,
    pub custom_health_check_config: Option<HealthCheckConfig>,
    pub cpu: Option<f64>,
    pub disk_size: Option<i64>,
    pub gpu_memory_size: Option<i64>,
}

/// Where a request's code package comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeSource<'a> {
    /// Base64 text of the zip, borrowed from the request body when it needed no unescaping.
    Zip(Cow<'a, str>),
    Oss { bucket: String, object: String },
}

#[derive(Debug)]
pub struct FunctionRequest<'a> {
    pub fields: FunctionFields,
    pub code: Option<CodeSource<'a>>,
}

/// Splits a CreateFunction/UpdateFunction body into its fields and its code source.
pub fn parse_function_request(body: &[u8]) -> CoreResult<FunctionRequest<'_>> {
    let (rest, code) = split_code(body)?;
    let fields = from_value(rest, &FUNCTION_SHAPE)?;
    Ok(FunctionRequest { fields, code })
}

/// Splits a body with a `code` member (any case) into the rest, as JSON, and the code source.
pub fn split_code(body: &[u8]) -> CoreResult<(Value, Option<CodeSource<'_>>)> {
    let top: BTreeMap<&str, &RawValue> = if body.iter().all(u8::is_ascii_whitespace) {
        BTreeMap::new()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| CoreError::bad_body(format_args!("It is not a valid JSON object: {e}")))?
    };
    let mut rest = Map::new();
    let mut code = None;
    for (key, raw) in top {
        if key.eq_ignore_ascii_case("code") {
            code = parse_code(raw)?;
        } else {
            let value: Value = serde_json::from_str(raw.get())
                .map_err(|e| CoreError::bad_body(format_args!("{key}: {e}")))?;
            rest.insert(key.to_owned(), value);
        }
    }
    Ok((Value::Object(rest), code))
}

const CODE: &str = "Code";
const CODE_FORMS: &str = "an object with zipFile, or with ossBucketName and ossObjectName";
const CONTAINER_IMAGE: &str = "A custom-container function runs an image.";

fn parse_code(raw: &RawValue) -> CoreResult<Option<CodeSource<'_>>> {
    if raw.get() == "null" {
        return Ok(None);
    }
    let parts: BTreeMap<&str, &RawValue> = serde_json::from_str(raw.get())
        .map_err(|_| CoreError::invalid_value(CODE, CODE_FORMS, raw.get().chars().take(64).collect::<String>()))?;
    let mut zip = None;
    let (mut bucket, mut object) = (None, None);
    for (key, value) in parts {
        let text = json_str(value, key)?;
        match key.to_ascii_lowercase().as_str() {
            "zipfile" => zip = text,
            "ossbucketname" => bucket = text.map(Cow::into_owned),
            "ossobjectname" => object = text.map(Cow::into_owned),
            _ => {}
        }
    }
    match (zip, bucket, object) {
        (Some(z), None, None) => Ok(Some(CodeSource::Zip(z))),
        (None, Some(bucket), Some(object)) => Ok(Some(CodeSource::Oss { bucket, object })),
        (None, None, None) => Ok(None),
        (Some(_), _, _) => Err(CoreError::invalid_value(CODE, CODE_FORMS, "zipFile and an OSS object")),
        (None, bucket, object) => Err(CoreError::invalid_value(
            CODE,
            CODE_FORMS,
            format!("ossBucketName '{}', ossObjectName '{}'", bucket.unwrap_or_default(), object.unwrap_or_default()),
        )),
    }
}

/// A JSON string value, borrowed when it holds no escapes; `null` reads as absent.
fn json_str<'a>(raw: &'a RawValue, key: &str) -> CoreResult<Option<Cow<'a, str>>> {
    let text = raw.get();
    if text == "null" {
        return Ok(None);
    }
    let bad = || CoreError::invalid_value(&format!("Code.{}", crate::error::pascal(key)), "a string", text);
    let inner = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).ok_or_else(bad)?;
    if !inner.contains('\\') {
        return Ok(Some(Cow::Borrowed(inner)));
    }
    serde_json::from_str::<String>(text).map(|s| Some(Cow::Owned(s))).map_err(|_| bad())
}

impl FunctionFields {
    pub fn with_defaults(mut self) -> Self {
        self.function_name = None;
        self.description.get_or_insert_with(String::new);
        self.ca_port.get_or_insert(9000);
        self.memory_size.get_or_insert(128);
        self.timeout.get_or_insert(3);
        self.initializer.get_or_insert_with(String::new);
        self.initialization_timeout.get_or_insert(3);
        self.environment_variables.get_or_insert_with(BTreeMap::new);
        self.instance_concurrency.get_or_insert(1);
        self.instance_type.get_or_insert_with(|| "e1".into());
        self.instance_lifecycle_config.get_or_insert_with(InstanceLifecycleConfig::default);
        self.layers.get_or_insert_with(Vec::new);
        self.disk_size.get_or_insert(512);
        self
    }

    pub fn apply(&mut self, patch: FunctionFields) {
        let FunctionFields {
            function_name: _,
            runtime,
            handler,
            custom_container_config,
            custom_runtime_config,
            ca_port,
            description,
            memory_size,
            timeout,
            initializer,
            initialization_timeout,
            environment_variables,
            instance_concurrency,
            instance_soft_concurrency,
            instance_type,
            instance_lifecycle_config,
            layers,
            custom_dns,
            custom_health_check_config,
            cpu,
            disk_size,
            gpu_memory_size,
        } = patch;
        replace(&mut self.runtime, runtime);
        replace(&mut self.handler, handler);
        replace(&mut self.custom_container_config, custom_container_config);
        replace(&mut self.custom_runtime_config, custom_runtime_config);
        replace(&mut self.ca_port, ca_port);
        replace(&mut self.description, description);
        replace(&mut self.memory_size, memory_size);
        replace(&mut self.timeout, timeout);
        replace(&mut self.initializer, initializer);
        replace(&mut self.initialization_timeout, initialization_timeout);
        replace(&mut self.environment_variables, environment_variables);
        replace(&mut self.instance_concurrency, instance_concurrency);
        replace(&mut self.instance_soft_concurrency, instance_soft_concurrency);
        replace(&mut self.instance_type, instance_type);
        replace(&mut self.instance_lifecycle_config, instance_lifecycle_config);
        replace(&mut self.layers, layers);
        replace(&mut self.custom_dns, custom_dns);
        replace(&mut self.custom_health_check_config, custom_health_check_config);
        replace(&mut self.cpu, cpu);
        replace(&mut self.disk_size, disk_size);
        replace(&mut self.gpu_memory_size, gpu_memory_size);
    }

    pub fn is_container(&self) -> bool {
        self.runtime.as_deref() == Some("custom-container")
    }

    /// Validates a complete (defaults applied) configuration.
    pub fn validate(&self) -> CoreResult<()> {
        let runtime = self.runtime.as_deref().ok_or_else(|| CoreError::required("Runtime"))?;
        if !RUNTIMES.contains(&runtime) {
            return Err(CoreError::invalid_value("Runtime", RUNTIMES.join(" | "), runtime));
        }
        let handler = self.handler.as_deref().unwrap_or("");
        if handler.is_empty() && !self.is_container() {
            return Err(CoreError::required("Handler"));
        }
        max_len("Handler", handler, 128)?;
        if handler.chars().any(char::is_whitespace) {
            return Err(CoreError::invalid_value("Handler", "a handler without whitespace", handler));
        }
        let file_dot_function = runtime.starts_with("python") || runtime.starts_with("nodejs") || runtime.starts_with("php");
        if file_dot_function && (!handler.contains('.') || handler.starts_with('.') || handler.ends_with('.')) {
            return Err(CoreError::invalid_value("Handler", "[file].[function]", handler));
        }
        // go1: the executable's path inside the package.
        if runtime == "go1" && (handler.starts_with('/') || handler.split('/').any(|p| p == "..")) {
            let allowed = "the executable's relative path inside the package";
            return Err(CoreError::invalid_value("Handler", allowed, handler));
        }
        if let Some(init) = &self.initializer {
            max_len("Initializer", init, 128)?;
        }
        if self.is_container() {
            match &self.custom_container_config {
                Some(c) if !c.image.is_empty() => {
                    max_len("CustomContainerConfig.Image", &c.image, 1024)?;
                    c.command_argv()?;
                    c.args_argv()?;
                }
                _ => return Err(CoreError::required_hint("CustomContainerConfig.Image", CONTAINER_IMAGE)),
            }
        }
        max_len("Description", self.description.as_deref().unwrap_or(""), 256)?;
        let memory = self.memory_size.unwrap_or(128);
        if !(128..=32768).contains(&memory) || memory % 64 != 0 {
            return Err(CoreError::invalid_value("MemorySize", "a multiple of 64 from 128 to 32768", memory));
        }
        in_range("Timeout", self.timeout.unwrap_or(3), 1, 86400)?;
        in_range("InitializationTimeout", self.initialization_timeout.unwrap_or(3), 1, 300)?;
        in_range("CaPort", self.ca_port.unwrap_or(9000), 1, 65535)?;
        let concurrency = self.instance_concurrency.unwrap_or(1);
        in_range("InstanceConcurrency", concurrency, 1, 200)?;
        if let Some(soft) = self.instance_soft_concurrency {
            in_range("InstanceSoftConcurrency", soft, 1, concurrency)?;
        }
        let kind = self.instance_type.as_deref().unwrap_or("e1");
        if !INSTANCE_TYPES.contains(&kind) {
            return Err(CoreError::invalid_value("InstanceType", INSTANCE_TYPES.join(" | "), kind));
        }
        if let Some(env) = &self.environment_variables {
            validate_env(env)?;
        }
        if let Some(l) = &self.instance_lifecycle_config {
            in_range("InstanceLifecycleConfig.PreFreeze.Timeout", l.pre_freeze.timeout, 1, 90)?;
            in_range("InstanceLifecycleConfig.PreStop.Timeout", l.pre_stop.timeout, 1, 90)?;
        }
        if let Some(layers) = &self.layers {
            validate_layers(layers)?;
        }
        if let Some(dns) = &self.custom_dns
            && dns.name_servers.len() > 5
        {
            let actual = format!("{} name servers", dns.name_servers.len());
            return Err(CoreError::invalid_value("CustomDNS.NameServers", "at most 5 name servers", actual));
        }
        if let Some(h) = &self.custom_health_check_config {
            if !h.http_get_url.starts_with('/') {
                let field = "CustomHealthCheckConfig.HttpGetUrl";
                return Err(CoreError::invalid_value(field, "a path starting with '/'", &h.http_get_url));
            }
            in_range("CustomHealthCheckConfig.InitialDelaySeconds", h.initial_delay_seconds, 0, 120)?;
            in_range("CustomHealthCheckConfig.PeriodSeconds", h.period_seconds, 1, 120)?;
            in_range("CustomHealthCheckConfig.TimeoutSeconds", h.timeout_seconds, 1, 3)?;
            in_range("CustomHealthCheckConfig.FailureThreshold", h.failure_threshold, 1, 120)?;
            in_range("CustomHealthCheckConfig.SuccessThreshold", h.success_threshold, 1, 120)?;
        }
        if let Some(cpu) = self.cpu {
            let units = cpu / 0.05;
            if !(0.05..=16.0).contains(&cpu) || (units - units.round()).abs() > 1e-6 {
                return Err(CoreError::invalid_value("Cpu", "a multiple of 0.05 from 0.05 to 16", cpu));
            }
        }
        if let Some(disk) = self.disk_size
            && disk != 512
            && disk != 10240
        {
            return Err(CoreError::invalid_value("DiskSize", "512 | 10240", disk));
        }
        if let Some(gpu) = self.gpu_memory_size
            && (gpu <= 0 || gpu % 1024 != 0 || gpu > 81920)
        {
            return Err(CoreError::invalid_value("GpuMemorySize", "a multiple of 1024 from 1024 to 81920", gpu));
        }
        Ok(())
    }
}

fn in_range(field: &str, value: i64, lo: i64, hi: i64) -> CoreResult<()> {
    if (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(CoreError::invalid_value(field, format!("{lo} to {hi}"), value))
    }
}

fn validate_env(env: &BTreeMap<String, String>) -> CoreResult<()> {
    let mut total = 0;
    for (key, value) in env {
        let mut chars = key.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(CoreError::bad_format("EnvironmentVariables key", "^[a-zA-Z][a-zA-Z0-9_]*$", key));
        }
        if key.starts_with("FC_") {
            let allowed = "a name without the reserved prefix FC_";
            return Err(CoreError::invalid_value("EnvironmentVariables key", allowed, key));
        }
        total += key.len() + value.len();
    }
    if total > ENV_TOTAL_MAX {
        let allowed = format!("at most {ENV_TOTAL_MAX} bytes of names and values in total");
        return Err(CoreError::invalid_value("EnvironmentVariables", allowed, format_args!("{total} bytes")));
    }
    Ok(())
}

fn validate_layers(layers: &[String]) -> CoreResult<()> {
    if layers.len() > 5 {
        return Err(CoreError::invalid_value("Layers", "at most 5 layers", format!("{} layers", layers.len())));
    }
    for arn in layers {
        let v1 = arn.split('#').count() == 3;
        let v2 = arn.starts_with("acs:fc:") && arn.contains(":layers/") && arn.contains("/versions/");
        if !v1 && !v2 {
            return Err(CoreError::invalid_value("Layers", crate::layers::ARN_FORMS, arn));
        }
    }
    Ok(())
}

/// The JSON of a function as Create/Get/Update/List answer it.
pub fn function_json(rec: &FunctionRecord) -> Value {
    let mut out = match &rec.config {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    // openfc's own bookkeeping inside the stored configuration (`_image`: the function's image pull) is not FC's.
    out.retain(|k, _| !k.starts_with('_'));
    out.insert("functionName".into(), rec.name.clone().into());
    out.insert("functionId".into(), rec.id.clone().into());
    if let Some(code) = &rec.code {
        out.insert("codeChecksum".into(), code.checksum.to_string().into());
        out.insert("codeSize".into(), code.size.into());
    }
    out.insert("createdTime".into(), rec.created_time.clone().into());
    out.insert("lastModifiedTime".into(), rec.modified_time.clone().into());
    let arns = out.get("layers").cloned().unwrap_or(Value::Array(vec![]));
    out.insert("layersArnV2".into(), arns);
    Value::Object(out)
}

#[cfg(test)]
#[path = "function_tests.rs"]
mod tests;
