//! InstanceExec (spec §5.1): a websocket session running a command in one of a function's instances on this
//! node. Query: `command` (repeated, the argv), `stdin`, `stdout`, `stderr`, `tty` (`true`/`false`),
//! `idleTimeout` (seconds). Frames carry the stream in their first byte, as FC's SDKs read and write them:
//! 0 stdin (client to server; an empty one closes the command's stdin, openfc's convention for the end of
//! input), 1 stdout, 2 stderr, 3 an error from openfc, 4 a terminal resize (client to server, JSON
//! `{"width": W, "height": H}`). When the command ends and its output is drained, openfc closes
//! the socket with code 1000 and the reason `exit code N`; the idle timeout closes it with an error frame
//! first. An instance on another node of the cluster is refused with `InstanceNotFound`, naming the node.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::response::Response;
use bytes::Bytes;
use openfc_core::wire::ErrorCode;
use openfc_invoker::exec::{ExecError, ExecRequest, ExecSession};
use tokio::io::AsyncWriteExt;

use super::App;
use super::endpoint::{Endpoint, Query};
use super::error::ApiError;

/// The idle timeout when none is asked for, and the longest accepted (a function's longest timeout).
const DEFAULT_IDLE_SECS: u64 = 600;
const MAX_IDLE_SECS: u64 = 86_400;
/// A terminal's size until the client sends one.
const DEFAULT_TERMINAL: (u16, u16) = (80, 24);

const FRAME_STDIN: u8 = 0;
const FRAME_ERROR: u8 = 3;
const FRAME_RESIZE: u8 = 4;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

/// A `true`/`false` query parameter; `field` is its name in FC's messages.
fn flag(query: &Query, name: &str, field: &str, default: bool) -> Result<bool, ApiError> {
    match query.get(name) {
        None | Some("") => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(ApiError::from(openfc_core::CoreError::invalid_value(field, "true | false", v))),
    }
}

/// The command and its streams, as the query asks.
fn exec_request(query: &Query) -> Result<(ExecRequest, Duration), ApiError> {
    let argv = query.list("command");
    if argv.is_empty() || argv[0].is_empty() {
        return Err(openfc_core::CoreError::required_hint("Command", "Send one `command` query parameter per argument.").into());
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(openfc_core::CoreError::invalid_value("Command", "text without NUL characters", "\\0").into());
    }
    let idle = match query.get("idleTimeout").filter(|v| !v.is_empty()) {
        None => DEFAULT_IDLE_SECS,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_IDLE_SECS).contains(n))
            .ok_or_else(|| ApiError::from(openfc_core::CoreError::invalid_value("IdleTimeout", format!("1 to {MAX_IDLE_SECS}"), v)))?,
    };
    let tty = flag(query, "tty", "Tty", false)?;
    let req = ExecRequest {
        argv,
        stdin: flag(query, "stdin", "Stdin", false)?,
        stdout: flag(query, "stdout", "Stdout", true)?,
        stderr: flag(query, "stderr", "Stderr", true)?,
        tty: tty.then_some(DEFAULT_TERMINAL),
    };
    Ok((req, Duration::from_secs(idle)))
}

/// Checks the request, finds the instance, starts the command and upgrades the connection.
pub(super) async fn handle(app: &App, account: &str, endpoint: Endpoint, query: &Query, parts: &mut Parts) -> Result<Response, ApiError> {
    let Endpoint::InstanceExec { service, function, qualifier, instance } = endpoint else {
        return Err(ApiError::internal("exec::handle called for another operation"));
    };
    let (req, idle) = exec_request(query)?;
    // FC's errors first (service, function, qualifier); the cluster's view, reported with heartbeats, tells an
    // instance on another node from one that does not run (this node's own instances are found at once).
    let listed = app.fc.list_instances(account, &service, &function, &qualifier, std::slice::from_ref(&instance), 1).await?;
    let upgrade = WebSocketUpgrade::from_request_parts(parts, &())
        .await
        .map_err(|e| invalid(format!("InstanceExec is a websocket request (GET with Connection: Upgrade, Upgrade: websocket): {e}")))?;
    let session = app.invoker.exec(account, service.as_str(), function.as_str(), &instance, req).map_err(|e| match e {
        ExecError::NoInstance(_) if !listed.is_empty() => ApiError::new(
            ErrorCode::InstanceNotFound,
            format!("instance '{instance}' runs on another node of this cluster: send InstanceExec to that node"),
        ),
        ExecError::NoInstance(_) => ApiError::new(
            ErrorCode::InstanceNotFound,
            format!("instance '{instance}' of function '{function}' ({service}.{qualifier}) is not running"),
        ),
        ExecError::Ended(_) => ApiError::new(ErrorCode::InstanceNotFound, format!("instance '{instance}' has stopped")),
        ExecError::Start(why) => ApiError::internal(format!("InstanceExec: {why}")),
    })?;
    tracing::info!(account, service = %service, function = %function, instance = %instance, "instance exec started");
    Ok(upgrade.on_upgrade(move |socket| run(socket, session, idle)))
}

fn frame(kind: u8, data: &[u8]) -> Message {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(kind);
    out.extend_from_slice(data);
    Message::Binary(Bytes::from(out))
}

/// A resize frame's size: `{"width": W, "height": H}` (any case; `cols`/`rows` too).
fn terminal_size(data: &[u8]) -> Option<(u16, u16)> {
    let v: serde_json::Value = serde_json::from_slice(data).ok()?;
    let obj = v.as_object()?;
    let get = |names: &[&str]| {
        obj.iter().find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n))).and_then(|(_, v)| v.as_u64()).and_then(|n| u16::try_from(n).ok())
    };
    Some((get(&["width", "cols"])?, get(&["height", "rows"])?))
}

/// Moves bytes both ways until the command ends and its output is drained, the client leaves, or nothing
/// moves for `idle`.
async fn run(mut socket: WebSocket, mut session: ExecSession, idle: Duration) {
    let mut input = session.input.take();
    let mut output = std::mem::replace(&mut session.output, tokio::sync::mpsc::channel(1).1);
    let deadline = tokio::time::sleep(idle);
    tokio::pin!(deadline);
    let mut output_open = true;
    let close = loop {
        tokio::select! {
            msg = socket.recv() => {
                deadline.as_mut().reset(tokio::time::Instant::now() + idle);
                let data: Bytes = match msg {
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Text(t))) => Bytes::copy_from_slice(t.as_str().as_bytes()),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                        session.kill();
                        return;
                    }
                };
                match data.first() {
                    // An empty stdin frame is the end of input (openfc's convention: FC's frames have no word for
                    // it): the command's stdin is closed.
                    Some(&FRAME_STDIN) if data.len() == 1 && !session.has_terminal() => input = None,
                    Some(&FRAME_STDIN) => {
                        if let Some(w) = input.as_mut() {
                            let ok = w.write_all(&data[1..]).await.is_ok() && w.flush().await.is_ok();
                            if !ok {
                                input = None;
                            }
                        }
                    }
                    Some(&FRAME_RESIZE) => {
                        if let Some((cols, rows)) = terminal_size(&data[1..]) {
                            session.resize(cols, rows);
                        }
                    }
                    _ => {}
                }
            }
            out = output.recv(), if output_open => match out {
                Some((stream, data)) => {
                    deadline.as_mut().reset(tokio::time::Instant::now() + idle);
                    if socket.send(frame(stream as u8, &data)).await.is_err() {
                        session.kill();
                        return;
                    }
                }
                None => output_open = false,
            },
            code = session.wait(), if !output_open => break format!("exit code {code}"),
            _ = &mut deadline => {
                session.kill();
                let _ = socket.send(frame(FRAME_ERROR, format!("idle timeout: nothing was sent or received for {} s", idle.as_secs()).as_bytes())).await;
                break "idle timeout".to_owned();
            }
        }
    };
    let _ = socket.send(Message::Close(Some(CloseFrame { code: 1000, reason: close.into() }))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_query_as_the_go_sdk_sends_it() {
        let q = Query::parse(Some("command=bash&command=-c&command=echo+hi&stdin=false&stdout=true&stderr=true&tty=false&idleTimeout=120"));
        let (req, idle) = exec_request(&q).unwrap();
        assert_eq!(req.argv, ["bash", "-c", "echo hi"]);
        assert!(!req.stdin && req.stdout && req.stderr && req.tty.is_none());
        assert_eq!(idle, Duration::from_secs(120));
        assert!(exec_request(&Query::parse(Some("stdin=true"))).is_err());
        assert!(exec_request(&Query::parse(Some("command=ls&tty=yes"))).is_err());
        assert!(exec_request(&Query::parse(Some("command=ls&idleTimeout=0"))).is_err());
        assert_eq!(terminal_size(br#"{"Width": 120, "Height": 40}"#), Some((120, 40)));
        assert_eq!(terminal_size(b"nope"), None);
    }
}
