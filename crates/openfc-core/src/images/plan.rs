//! What a container instance runs: the `ContainerPlan` built from a pulled image and the function's
//! configuration, and the limits of a non-web image's event.

use std::sync::Arc;

use serde_json::Value;

use super::PulledImage;
use crate::error::{CoreError, CoreResult};
use crate::function::CustomContainerConfig;

/// A stored configuration of a custom-container function whose image is no web server.
pub fn non_web_container(config: &Value) -> bool {
    config.get("runtime").and_then(Value::as_str) == Some("custom-container")
        && config.get("customContainerConfig").and_then(|c| c.get("webServerMode")).and_then(Value::as_bool) == Some(false)
}

/// The most event bytes a non-web image can be given: `FC_CUSTOM_CONTAINER_EVENT=` and the value must fit one
/// environment string (MAX_ARG_STRLEN, 131,072 bytes with its NUL).
pub const MAX_NON_WEB_EVENT: usize = 131_072 - "FC_CUSTOM_CONTAINER_EVENT=".len() - 1;

/// Refuses an event a non-web image cannot be given in its environment.
pub fn check_non_web_event(event: &[u8]) -> CoreResult<()> {
    if event.len() > MAX_NON_WEB_EVENT {
        return Err(CoreError::EntityTooLarge(MAX_NON_WEB_EVENT as u64));
    }
    if event.contains(&0) {
        return Err(CoreError::invalid("the event of a custom-container function with webServerMode false is passed in an environment variable and must not contain NUL bytes"));
    }
    if std::str::from_utf8(event).is_err() {
        return Err(CoreError::invalid("the event of a custom-container function with webServerMode false is passed in an environment variable and must be UTF-8 text"));
    }
    Ok(())
}

/// What runs in a container instance (containers.md §4.2–4.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerPlan {
    /// The image as the function names it.
    pub reference: String,
    pub image: Arc<PulledImage>,
    pub argv: Vec<String>,
    /// The image's `Env` (`KEY=value`), before the function's and FC's variables.
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub web_server_mode: bool,
}

impl std::hash::Hash for PulledImage {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.digest.hash(state);
    }
}

/// argv by the Kubernetes rule: `command` replaces ENTRYPOINT, `args` replaces CMD, `command` without `args`
/// drops CMD. `None`: nothing to run.
pub fn argv(entrypoint: &[String], cmd: &[String], command: Option<Vec<String>>, args: Option<Vec<String>>) -> Option<Vec<String>> {
    let argv: Vec<String> = match (command, args) {
        (Some(c), Some(a)) => c.into_iter().chain(a).collect(),
        (Some(c), None) => c,
        (None, Some(a)) => entrypoint.iter().cloned().chain(a).collect(),
        (None, None) => entrypoint.iter().chain(cmd).cloned().collect(),
    };
    if argv.is_empty() { None } else { Some(argv) }
}

impl ContainerPlan {
    pub fn new(image: Arc<PulledImage>, config: &CustomContainerConfig, reference: &str) -> CoreResult<ContainerPlan> {
        let argv = argv(&image.entrypoint, &image.cmd, config.command_argv()?, config.args_argv()?).ok_or_else(|| {
            CoreError::FunctionNotStarted(format!(
                "image '{reference}' has no ENTRYPOINT or CMD and the function sets no command"
            ))
        })?;
        let env = image
            .env
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (kv.clone(), String::new()),
            })
            .collect();
        let cwd = if image.working_dir.is_empty() { "/".to_owned() } else { image.working_dir.clone() };
        Ok(ContainerPlan { reference: reference.to_owned(), image, argv, env, cwd, web_server_mode: config.web_server_mode })
    }
}
