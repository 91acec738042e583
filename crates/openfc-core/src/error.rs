//! Domain errors. The API layer maps each variant to a wire code with one exhaustive `match`.

use crate::ports::{BlobError, MetaError};
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("payload size exceeds maximum allowed size ({0} bytes)")]
    EntityTooLarge(u64),
    #[error("service '{0}' does not exist")]
    ServiceNotFound(String),
    #[error("function '{function}' does not exist in service '{service}'")]
    FunctionNotFound { service: String, function: String },
    #[error("service '{0}' already exists")]
    ServiceAlreadyExists(String),
    #[error("function '{function}' already exists in service '{service}'")]
    FunctionAlreadyExists { service: String, function: String },
    #[error("service '{service}' is not empty: {detail}")]
    ServiceNotEmpty { service: String, detail: String },
    #[error("alias {alias} of service {service} already exists")]
    AliasAlreadyExists { service: String, alias: String },
    #[error("function '{function}' has active triggers: delete them first")]
    FunctionNotEmpty { function: String },
    #[error("trigger '{trigger}' does not exist in service '{service}' and function '{function}'")]
    TriggerNotFound { service: String, function: String, trigger: String },
    #[error("trigger '{trigger}' already exists in service '{service}' and function '{function}'")]
    TriggerAlreadyExists { service: String, function: String, trigger: String },
    #[error("domain name '{0}' does not exist")]
    DomainNameNotFound(String),
    #[error("domain name {0} already exists")]
    DomainNameAlreadyExists(String),
    #[error("AsyncConfig for {0} does not exist.")]
    AsyncConfigNotExists(String),
    #[error("on-demand config for {0} does not exist")]
    OnDemandConfigNotFound(String),
    #[error("layer '{0}' does not exist")]
    LayerNotFound(String),
    #[error("version {version} of layer '{layer}' does not exist")]
    LayerVersionNotFound { layer: String, version: String },
    #[error("the resource being modified has been changed")]
    PreconditionFailed,
    #[error("version '{qualifier}' of service '{service}' does not exist")]
    VersionNotFound { service: String, qualifier: String },
    #[error("alias '{qualifier}' of service '{service}' does not exist")]
    AliasNotFound { service: String, qualifier: String },
    /// The function's instance could not be started, or its runtime exited while starting.
    #[error("{0}")]
    FunctionNotStarted(String),
    /// The function's image could not be pulled; the reason names the image, the registry and the cause.
    #[error("Failed to pull image. {0}")]
    PullImageFailed(String),
    /// No instance capacity within the wait (concurrency or instance limits).
    #[error("{0}")]
    Throttled(String),
    #[error("vpc binding '{vpc_id}' does not exist in service '{service}'")]
    VpcBindingNotFound { service: String, vpc_id: String },
    #[error("event source '{source_arn}' is not registered for function '{function}' of service '{service}' (qualifier {qualifier})")]
    EventSourceNotFound { service: String, function: String, qualifier: String, source_arn: String },
    #[error("{0}")]
    StatefulAsyncInvocationNotFound(String),
    #[error("{0}")]
    StatefulAsyncInvocationAlreadyExists(String),
    /// A failure of a backend or of openfc itself; the detail is logged, never sent.
    #[error("internal: {0}")]
    Internal(String),
}

/// InvalidArgument messages are written in FC's own sentence shapes (docs/fc-messages.md lists each with its
/// source), so a client that shows or matches FC's message reads the same text from openfc. Fields are named as
/// FC names them in these sentences: PascalCase (`Runtime`, `LogType`), nested ones joined by dots.
impl CoreError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        CoreError::InvalidArgument(msg.into())
    }

    /// A value outside its field's domain, as FC words it:
    /// `Runtime is set to an invalid value (allowed: python3.10 | nodejs18, actual: 'python4')`.
    pub fn invalid_value(field: &str, allowed: impl fmt::Display, actual: impl fmt::Display) -> Self {
        Self::invalid(format!("{field} is set to an invalid value (allowed: {allowed}, actual: '{actual}')"))
    }

    /// A name that breaks its pattern, as FC words it:
    /// `domain name doesn't match expected format (allowed: '^…$', actual: 'Auto')`.
    pub fn bad_format(field: &str, pattern: &str, actual: impl fmt::Display) -> Self {
        Self::invalid(format!("{field} doesn't match expected format (allowed: '{pattern}', actual: '{actual}')"))
    }

    /// A field the request must carry, as FC words it (`Disk is required but not provided.`).
    pub fn required(field: &str) -> Self {
        Self::invalid(format!("{field} is required but not provided."))
    }

    /// [`CoreError::required`] followed by what to send.
    pub fn required_hint(field: &str, hint: &str) -> Self {
        Self::invalid(format!("{field} is required but not provided. {hint}"))
    }

    /// A request body that is not the JSON expected, as FC words it (`Bad data in request body.`), with the
    /// reason.
    pub fn bad_body(reason: impl fmt::Display) -> Self {
        Self::invalid(format!("Bad data in request body. {reason}"))
    }
}

/// A JSON member name as a field of FC's messages: `authType` → `AuthType`.
pub(crate) fn pascal(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

impl From<BlobError> for CoreError {
    fn from(e: BlobError) -> Self {
        CoreError::Internal(format!("code store: {e}"))
    }
}

/// Meta errors that reach here unhandled are internal; each use case converts the semantic ones itself.
impl From<MetaError> for CoreError {
    fn from(e: MetaError) -> Self {
        CoreError::Internal(format!("metadata store: {e}"))
    }
}

/// For `map_err`: a metadata error as a use case reports it — NotFound as the use case's own error, a lost
/// ETag race as PreconditionFailed, anything else internal.
pub(crate) fn meta_err(not_found: impl FnOnce() -> CoreError) -> impl FnOnce(MetaError) -> CoreError {
    move |e| match e {
        MetaError::NotFound => not_found(),
        MetaError::PreconditionFailed => CoreError::PreconditionFailed,
        other => other.into(),
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
