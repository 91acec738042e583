//! What the HTTP layer and the server's loops ask of the invoker besides core's `Invoker` port (which runs
//! functions): what it reports, the functions' logs, and commands run in instances (InstanceExec). `App` holds
//! it as this trait, so the router's in-process tests run without a real invoker.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use openfc_image::store::ImageStore;
use openfc_invoker::exec::{ExecError, ExecRequest, ExecSession};

#[async_trait]
pub trait InvokerStatus: Send + Sync {
    /// Instances alive, and busy with a request.
    fn instance_counts(&self) -> (usize, usize);
    /// What the host provides for isolation (`/health`).
    fn isolation(&self) -> serde_json::Value;
    fn warm_sandboxes(&self) -> usize;
    fn prestarted_health(&self) -> serde_json::Value;
    /// The image store of custom-container functions, if any.
    fn image_store(&self) -> Option<&Arc<ImageStore>>;
    /// Paths running instances use (image trees the collector must keep).
    fn paths_in_use(&self) -> HashSet<PathBuf>;
    /// The last `limit` lines a function's instances wrote on this node.
    async fn function_logs(&self, account: &str, service: &str, function: &str, limit: usize) -> Vec<String>;
    /// Starts a command in one of the function's instances on this node (InstanceExec).
    fn exec(&self, account: &str, service: &str, function: &str, instance: &str, req: ExecRequest) -> Result<ExecSession, ExecError>;
}

#[async_trait]
impl InvokerStatus for openfc_invoker::Invoker {
    fn instance_counts(&self) -> (usize, usize) {
        openfc_invoker::Invoker::instance_counts(self)
    }

    fn isolation(&self) -> serde_json::Value {
        openfc_invoker::Invoker::isolation(self)
    }

    fn warm_sandboxes(&self) -> usize {
        openfc_invoker::Invoker::warm_sandboxes(self)
    }

    fn prestarted_health(&self) -> serde_json::Value {
        openfc_invoker::Invoker::prestarted_health(self)
    }

    fn image_store(&self) -> Option<&Arc<ImageStore>> {
        openfc_invoker::Invoker::image_store(self)
    }

    fn paths_in_use(&self) -> HashSet<PathBuf> {
        openfc_invoker::Invoker::paths_in_use(self)
    }

    async fn function_logs(&self, account: &str, service: &str, function: &str, limit: usize) -> Vec<String> {
        openfc_invoker::Invoker::function_logs(self, account, service, function, limit).await
    }

    fn exec(&self, account: &str, service: &str, function: &str, instance: &str, req: ExecRequest) -> Result<ExecSession, ExecError> {
        openfc_invoker::Invoker::exec(self, account, service, function, instance, req)
    }
}
