//! The single, exhaustive mapping from domain errors to FC wire errors, and their rendering.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use openfc_core::CoreError;
use openfc_core::wire::ErrorCode;
use openfc_core::wire::error_code::{INTERNAL_MESSAGE, error_body};

/// An error on its way to the client. `detail` (internal failures only) is logged, never sent.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub detail: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), detail: None }
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        ApiError { code: ErrorCode::InternalServerError, message: INTERNAL_MESSAGE.into(), detail: Some(detail.into()) }
    }

    pub fn path_not_supported(method: &str, path: &str) -> Self {
        ApiError::new(ErrorCode::PathNotSupported, format!("'{method}' against '{path}' is not supported"))
    }

    pub fn render(&self, request_id: &str) -> Response {
        let status = StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = error_body(self.code, &self.message, request_id).to_string();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        resp
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let message = e.to_string();
        let code = match e {
            CoreError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            CoreError::EntityTooLarge(_) => ErrorCode::EntityTooLarge,
            CoreError::ServiceNotFound(_) => ErrorCode::ServiceNotFound,
            CoreError::FunctionNotFound { .. } => ErrorCode::FunctionNotFound,
            CoreError::ServiceAlreadyExists(_) => ErrorCode::ServiceAlreadyExists,
            CoreError::FunctionAlreadyExists { .. } => ErrorCode::FunctionAlreadyExists,
            CoreError::ServiceNotEmpty { .. } => ErrorCode::ServiceNotEmpty,
            CoreError::PreconditionFailed => ErrorCode::PreconditionFailed,
            CoreError::VersionNotFound { .. } => ErrorCode::VersionNotFound,
            CoreError::AliasNotFound { .. } => ErrorCode::AliasNotFound,
            CoreError::AliasAlreadyExists { .. } => ErrorCode::AliasAlreadyExists,
            CoreError::FunctionNotEmpty { .. } => ErrorCode::FunctionNotEmpty,
            CoreError::TriggerNotFound { .. } => ErrorCode::TriggerNotFound,
            CoreError::TriggerAlreadyExists { .. } => ErrorCode::TriggerAlreadyExists,
            CoreError::DomainNameNotFound(_) => ErrorCode::DomainNameNotFound,
            CoreError::DomainNameAlreadyExists(_) => ErrorCode::DomainNameAlreadyExists,
            CoreError::AsyncConfigNotExists(_) => ErrorCode::AsyncConfigNotExists,
            CoreError::OnDemandConfigNotFound(_) => ErrorCode::OnDemandConfigNotFound,
            CoreError::LayerNotFound(_) => ErrorCode::LayerNotFound,
            CoreError::LayerVersionNotFound { .. } => ErrorCode::LayerVersionNotFound,
            CoreError::VpcBindingNotFound { .. } => ErrorCode::VpcBindingNotFound,
            CoreError::EventSourceNotFound { .. } => ErrorCode::EventSourceNotFound,
            CoreError::FunctionNotStarted(_) => ErrorCode::FunctionNotStarted,
            CoreError::PullImageFailed(_) => ErrorCode::PullImageFailed,
            CoreError::Throttled(_) => ErrorCode::ResourceThrottled,
            CoreError::StatefulAsyncInvocationNotFound(_) => ErrorCode::StatefulAsyncInvocationNotFound,
            CoreError::StatefulAsyncInvocationAlreadyExists(_) => ErrorCode::StatefulAsyncInvocationAlreadyExists,
            CoreError::Internal(detail) => return ApiError::internal(detail),
        };
        ApiError::new(code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_detail_stays_inside() {
        let e = ApiError::from(CoreError::Internal("disk on fire at /var/x".into()));
        let resp = e.render("rid-1");
        assert_eq!(resp.status(), 500);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("disk on fire"), "{text}");
        assert!(text.contains("\"RequestId\":\"rid-1\"") && text.contains("\"Code\":\"InternalServerError\""));
    }

    #[test]
    fn mapping_keeps_messages() {
        let e = ApiError::from(CoreError::ServiceNotFound("svc".into()));
        assert_eq!((e.code, e.message.as_str()), (ErrorCode::ServiceNotFound, "service 'svc' does not exist"));
        let e = ApiError::from(CoreError::EntityTooLarge(10));
        assert_eq!(e.code.status(), 400);
        assert_eq!(e.message, "payload size exceeds maximum allowed size (10 bytes)");
    }
}
