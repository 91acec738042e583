//! Validation of a complete function configuration against FC's limits.

use std::collections::BTreeMap;

use super::FunctionFields;
use crate::error::{CoreError, CoreResult};
use crate::service::max_len;

/// Runtime identifiers FC 2.0 accepts (spec §8.5), current and deprecated.
pub const RUNTIMES: &[&str] = &[
    "nodejs20", "nodejs18", "nodejs16", "nodejs14", "nodejs12", "nodejs10", "nodejs8", "nodejs6", "nodejs4.4",
    "python3.12", "python3.10", "python3.9", "python3", "python2.7", "java11", "java8", "php7.2", "dotnetcore3.1",
    "dotnetcore2.1", "go1", "custom.debian11", "custom.debian10", "custom", "custom-container",
];
const INSTANCE_TYPES: &[&str] = &["e1", "c1", "fc.gpu.tesla.1", "fc.gpu.ampere.1", "g1"];
const ENV_TOTAL_MAX: usize = 4096;
const CONTAINER_IMAGE: &str = "A custom-container function runs an image.";

impl FunctionFields {
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
