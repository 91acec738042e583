//! A function's settable fields (`FunctionFields` and its nested configurations), FC's defaults and updates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, CoreResult};
use crate::service::replace;

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
}
