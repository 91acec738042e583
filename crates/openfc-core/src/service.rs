//! Services (spec §5.2): the request shape, validation, FC's defaults and the response.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{CoreError, CoreResult};
use crate::ports::ServiceRecord;
use crate::wire::lenient::{Field, Shape};

static LOG_CONFIG: Shape = Shape::Object(&[
    Field("project", &Shape::Any),
    Field("logstore", &Shape::Any),
    Field("enableRequestMetrics", &Shape::Any),
    Field("enableInstanceMetrics", &Shape::Any),
    Field("logBeginRule", &Shape::Any),
]);
static VPC_CONFIG: Shape = Shape::Object(&[
    Field("vpcId", &Shape::Any),
    Field("vSwitchIds", &Shape::Any),
    Field("securityGroupId", &Shape::Any),
    Field("role", &Shape::Any),
]);
static NAS_MOUNT: Shape = Shape::Object(&[
    Field("serverAddr", &Shape::Any),
    Field("mountDir", &Shape::Any),
    Field("enableTLS", &Shape::Any),
]);
static NAS_CONFIG: Shape = Shape::Object(&[
    Field("userId", &Shape::Any),
    Field("groupId", &Shape::Any),
    Field("mountPoints", &Shape::ArrayOf(&NAS_MOUNT)),
]);
static TRACING_CONFIG: Shape =
    Shape::Object(&[Field("type", &Shape::Any), Field("params", &Shape::MapOf(&Shape::Any))]);
static OSS_MOUNT: Shape = Shape::Object(&[
    Field("bucketName", &Shape::Any),
    Field("bucketPath", &Shape::Any),
    Field("endpoint", &Shape::Any),
    Field("mountDir", &Shape::Any),
    Field("readOnly", &Shape::Any),
]);
static OSS_MOUNT_CONFIG: Shape = Shape::Object(&[Field("mountPoints", &Shape::ArrayOf(&OSS_MOUNT))]);

/// CreateService / UpdateService body.
pub static SERVICE_SHAPE: Shape = Shape::Object(&[
    Field("serviceName", &Shape::Any),
    Field("description", &Shape::Any),
    Field("role", &Shape::Any),
    Field("internetAccess", &Shape::Any),
    Field("logConfig", &LOG_CONFIG),
    Field("vpcConfig", &VPC_CONFIG),
    Field("nasConfig", &NAS_CONFIG),
    Field("tracingConfig", &TRACING_CONFIG),
    Field("ossMountConfig", &OSS_MOUNT_CONFIG),
]);

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct LogConfig {
    pub project: String,
    pub logstore: String,
    pub enable_request_metrics: bool,
    pub enable_instance_metrics: bool,
    pub log_begin_rule: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct VpcConfig {
    pub vpc_id: String,
    pub v_switch_ids: Vec<String>,
    pub security_group_id: String,
    pub role: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct NasMountPoint {
    pub server_addr: String,
    pub mount_dir: String,
    #[serde(rename = "enableTLS")]
    pub enable_tls: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct NasConfig {
    pub user_id: i64,
    pub group_id: i64,
    pub mount_points: Vec<NasMountPoint>,
}

impl Default for NasConfig {
    fn default() -> Self {
        NasConfig { user_id: -1, group_id: -1, mount_points: Vec::new() }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct TracingConfig {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub params: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct OssMountPoint {
    pub bucket_name: String,
    pub bucket_path: String,
    pub endpoint: String,
    pub mount_dir: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct OssMountConfig {
    pub mount_points: Vec<OssMountPoint>,
}

/// Every settable field of a service; `None` = not given (create: default; update: unchanged).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    pub description: Option<String>,
    pub role: Option<String>,
    pub internet_access: Option<bool>,
    pub log_config: Option<LogConfig>,
    pub vpc_config: Option<VpcConfig>,
    pub nas_config: Option<NasConfig>,
    pub tracing_config: Option<TracingConfig>,
    pub oss_mount_config: Option<OssMountConfig>,
}

impl ServiceFields {
    /// The stored configuration of a new service: the request with FC's defaults filled in.
    pub fn with_defaults(mut self) -> Self {
        self.service_name = None;
        self.description.get_or_insert_with(String::new);
        self.role.get_or_insert_with(String::new);
        self.internet_access.get_or_insert(true);
        self.log_config.get_or_insert_with(|| LogConfig { log_begin_rule: "None".into(), ..Default::default() });
        self.vpc_config.get_or_insert_with(VpcConfig::default);
        self.nas_config.get_or_insert_with(NasConfig::default);
        self.tracing_config.get_or_insert_with(TracingConfig::default);
        self.oss_mount_config.get_or_insert_with(OssMountConfig::default);
        self
    }

    /// Applies an update: every field given replaces the stored one.
    pub fn apply(&mut self, patch: ServiceFields) {
        let ServiceFields {
            service_name: _,
            description,
            role,
            internet_access,
            log_config,
            vpc_config,
            nas_config,
            tracing_config,
            oss_mount_config,
        } = patch;
        replace(&mut self.description, description);
        replace(&mut self.role, role);
        replace(&mut self.internet_access, internet_access);
        replace(&mut self.log_config, log_config);
        replace(&mut self.vpc_config, vpc_config);
        replace(&mut self.nas_config, nas_config);
        replace(&mut self.tracing_config, tracing_config);
        replace(&mut self.oss_mount_config, oss_mount_config);
    }

    pub fn validate(&self) -> CoreResult<()> {
        if let Some(d) = &self.description {
            max_len("Description", d, 256)?;
        }
        if let Some(r) = &self.role {
            max_len("Role", r, 1024)?;
        }
        if let Some(l) = &self.log_config {
            if l.project.is_empty() != l.logstore.is_empty() {
                return Err(CoreError::invalid_value(
                    "LogConfig",
                    "project and logstore set together",
                    format!("project '{}', logstore '{}'", l.project, l.logstore),
                ));
            }
            if !["", "None", "DefaultRegex"].contains(&l.log_begin_rule.as_str()) {
                let rule = &l.log_begin_rule;
                return Err(CoreError::invalid_value("LogConfig.LogBeginRule", "None | DefaultRegex", rule));
            }
        }
        if let Some(v) = &self.vpc_config
            && !v.vpc_id.is_empty()
            && (v.v_switch_ids.is_empty() || v.security_group_id.is_empty())
        {
            return Err(CoreError::invalid_value(
                "VpcConfig",
                "vSwitchIds and securityGroupId with vpcId",
                format!("vpcId '{}' without them", v.vpc_id),
            ));
        }
        if let Some(n) = &self.nas_config {
            for (field, id) in [("NasConfig.UserId", n.user_id), ("NasConfig.GroupId", n.group_id)] {
                if !(-1..=65534).contains(&id) {
                    return Err(CoreError::invalid_value(field, "-1 to 65534", id));
                }
            }
            if n.mount_points.len() > 5 {
                return Err(CoreError::invalid_value(
                    "NasConfig.MountPoints",
                    "at most 5 mount points",
                    format!("{} mount points", n.mount_points.len()),
                ));
            }
            for m in &n.mount_points {
                if m.server_addr.is_empty() {
                    return Err(CoreError::required("NasConfig.MountPoints.ServerAddr"));
                }
                mount_dir("NasConfig.MountPoints.MountDir", &m.mount_dir)?;
            }
        }
        if let Some(t) = &self.tracing_config
            && let Some(kind) = &t.kind
            && kind != "Jaeger"
        {
            return Err(CoreError::invalid_value("TracingConfig.Type", "Jaeger", kind));
        }
        if let Some(o) = &self.oss_mount_config {
            for m in &o.mount_points {
                if m.bucket_name.is_empty() {
                    return Err(CoreError::required("OssMountConfig.MountPoints.BucketName"));
                }
                mount_dir("OssMountConfig.MountPoints.MountDir", &m.mount_dir)?;
            }
        }
        Ok(())
    }
}

pub(crate) fn replace<T>(slot: &mut Option<T>, new: Option<T>) {
    if new.is_some() {
        *slot = new;
    }
}

pub(crate) fn max_len(field: &str, value: &str, max: usize) -> CoreResult<()> {
    let len = value.chars().count();
    if len > max {
        return Err(CoreError::invalid_value(field, format!("at most {max} characters"), format!("{len} characters")));
    }
    Ok(())
}

fn mount_dir(field: &str, dir: &str) -> CoreResult<()> {
    if !dir.starts_with('/') || dir == "/" || dir.split('/').any(|s| s == "..") {
        return Err(CoreError::invalid_value(field, "an absolute directory other than '/'", dir));
    }
    Ok(())
}

/// The JSON of a service as Create/Get/Update/List answer it.
pub fn service_json(rec: &ServiceRecord) -> Value {
    let mut out = match &rec.config {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    out.insert("serviceName".into(), rec.name.clone().into());
    out.insert("serviceId".into(), rec.id.clone().into());
    out.insert("createdTime".into(), rec.created_time.clone().into());
    out.insert("lastModifiedTime".into(), rec.modified_time.clone().into());
    out.entry("useSLRAuthentication").or_insert(false.into());
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::lenient::parse_body;

    fn check(body: &str, ok: bool) {
        let parsed: CoreResult<ServiceFields> = parse_body(body.as_bytes(), &SERVICE_SHAPE);
        let result = parsed.and_then(|f| f.validate());
        assert_eq!(result.is_ok(), ok, "{body}: {result:?}");
    }

    #[test]
    fn validation_table() {
        check(r#"{"serviceName":"s"}"#, true);
        check(r#"{"description":"d","INTERNETACCESS":false}"#, true);
        check(&format!(r#"{{"description":"{}"}}"#, "x".repeat(257)), false);
        check(r#"{"internetAccess":"yes"}"#, false);
        check(r#"{"logConfig":{"project":"p"}}"#, false);
        check(r#"{"logConfig":{"project":"p","logstore":"l","logBeginRule":"DefaultRegex"}}"#, true);
        check(r#"{"logConfig":{"logBeginRule":"Bad"}}"#, false);
        check(r#"{"vpcConfig":{"vpcId":"v"}}"#, false);
        check(r#"{"nasConfig":{"userId":-2}}"#, false);
        check(r#"{"nasConfig":{"userId":-1,"groupId":-1,"mountPoints":[{"serverAddr":"a:/","mountDir":"/mnt/a"}]}}"#, true);
        check(r#"{"nasConfig":{"mountPoints":[{"serverAddr":"a:/","mountDir":"rel"}]}}"#, false);
        check(r#"{"tracingConfig":{"type":"Zipkin"}}"#, false);
        check(r#"{"tracingConfig":{}}"#, true);
    }

    #[test]
    fn defaults_and_updates() {
        let mut f = ServiceFields { description: Some("a".into()), ..Default::default() }.with_defaults();
        assert_eq!(f.internet_access, Some(true));
        f.apply(ServiceFields { internet_access: Some(false), ..Default::default() });
        assert_eq!((f.description.as_deref(), f.internet_access), (Some("a"), Some(false)));
        f.apply(ServiceFields { tracing_config: Some(TracingConfig::default()), ..Default::default() });
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["tracingConfig"], serde_json::json!({"type": null, "params": null}));
    }
}
