//! The FC error codes openfc sends (spec §4.2), each with its HTTP status. Messages are built by the caller.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    MissingRequiredHeader,
    PathNotSupported,
    EntityTooLarge,
    AccessDenied,
    SignatureNotMatch,
    InvalidAccessKeyId,
    RequestTimeTooSkewed,
    ServiceNotFound,
    FunctionNotFound,
    VersionNotFound,
    AliasNotFound,
    ServiceAlreadyExists,
    FunctionAlreadyExists,
    ServiceNotEmpty,
    AliasAlreadyExists,
    FunctionNotEmpty,
    TriggerNotFound,
    TriggerAlreadyExists,
    DomainNameNotFound,
    DomainNameAlreadyExists,
    StatefulAsyncInvocationNotFound,
    StatefulAsyncInvocationAlreadyExists,
    /// A request to a custom domain that no route of it matches.
    DomainRouteNotFound,
    AsyncConfigNotExists,
    OnDemandConfigNotFound,
    LayerNotFound,
    LayerVersionNotFound,
    /// DeleteVpcBinding of a VPC the service is not bound to (FC's code is not documented).
    VpcBindingNotFound,
    /// DeregisterEventSource of a source that is not registered (FC's code is not documented).
    EventSourceNotFound,
    /// InstanceExec naming an instance that does not run (or not on the node asked; FC's code is not documented).
    InstanceNotFound,
    PreconditionFailed,
    InvalidRange,
    FunctionNotStarted,
    /// A custom-container function whose image could not be pulled (FC 3.0's code; FC 2.0's is unknown).
    PullImageFailed,
    ResourceThrottled,
    MethodNotAllowed,
    InternalServerError,
}

impl ErrorCode {
    /// The code as it appears in `ErrorCode`/`Code`, and the HTTP status it travels with.
    pub fn parts(self) -> (&'static str, u16) {
        use ErrorCode::*;
        match self {
            InvalidArgument => ("InvalidArgument", 400),
            MissingRequiredHeader => ("MissingRequiredHeader", 400),
            PathNotSupported => ("PathNotSupported", 400),
            EntityTooLarge => ("EntityTooLarge", 400),
            AccessDenied => ("AccessDenied", 403),
            SignatureNotMatch => ("SignatureNotMatch", 403),
            InvalidAccessKeyId => ("InvalidAccessKeyID", 403),
            RequestTimeTooSkewed => ("RequestTimeTooSkewed", 403),
            ServiceNotFound => ("ServiceNotFound", 404),
            FunctionNotFound => ("FunctionNotFound", 404),
            VersionNotFound => ("VersionNotFound", 404),
            AliasNotFound => ("AliasNotFound", 404),
            ServiceAlreadyExists => ("ServiceAlreadyExists", 409),
            FunctionAlreadyExists => ("FunctionAlreadyExists", 409),
            ServiceNotEmpty => ("ServiceNotEmpty", 409),
            AliasAlreadyExists => ("AliasAlreadyExists", 409),
            FunctionNotEmpty => ("FunctionNotEmpty", 409),
            TriggerNotFound => ("TriggerNotFound", 404),
            TriggerAlreadyExists => ("TriggerAlreadyExists", 409),
            DomainNameNotFound => ("DomainNameNotFound", 404),
            DomainNameAlreadyExists => ("DomainNameAlreadyExists", 409),
            StatefulAsyncInvocationNotFound => ("StatefulAsyncInvocationNotFound", 404),
            StatefulAsyncInvocationAlreadyExists => ("StatefulAsyncInvocationAlreadyExists", 409),
            DomainRouteNotFound => ("DomainRouteNotFound", 404),
            AsyncConfigNotExists => ("AsyncConfigNotExists", 404),
            OnDemandConfigNotFound => ("OnDemandConfigNotFound", 404),
            LayerNotFound => ("LayerNotFound", 404),
            LayerVersionNotFound => ("LayerVersionNotFound", 404),
            VpcBindingNotFound => ("VpcBindingNotFound", 404),
            EventSourceNotFound => ("EventSourceNotFound", 404),
            InstanceNotFound => ("InstanceNotFound", 404),
            PreconditionFailed => ("PreconditionFailed", 412),
            InvalidRange => ("InvalidRange", 416),
            FunctionNotStarted => ("FunctionNotStarted", 412),
            PullImageFailed => ("PullImageFailed", 412),
            ResourceThrottled => ("ResourceThrottled", 429),
            MethodNotAllowed => ("MethodNotAllowed", 405),
            InternalServerError => ("InternalServerError", 500),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.parts().0
    }

    pub fn status(self) -> u16 {
        self.parts().1
    }
}

/// The generic message sent for internal failures; the detail is only logged.
pub const INTERNAL_MESSAGE: &str = "an internal error has occurred. Please retry.";

/// The FC error body: both key styles, so fc2 (ErrorCode) and Tea (Code) SDKs both read it.
pub fn error_body(code: ErrorCode, message: &str, request_id: &str) -> serde_json::Value {
    serde_json::json!({
        "ErrorCode": code.as_str(),
        "ErrorMessage": message,
        "RequestId": request_id,
        "Code": code.as_str(),
        "Message": message,
    })
}
