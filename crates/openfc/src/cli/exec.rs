//! `openfc exec SERVICE/FUNCTION [INSTANCE] -- CMD [ARGS...]`: a command inside a running instance, over
//! InstanceExec's websocket (api/exec.rs has the frames: 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize; the
//! server closes with `exit code N`). Without an instance, the first one ListInstances names is used.

use std::io::{Read, Write};

use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::client::{Answer, Call, Client, seg};
use super::commands::service_path;
use super::terminal::{self, RawMode};
use super::{CliError, ExecArgs, split_target};

const FRAME_STDIN: u8 = 0;
const FRAME_STDOUT: u8 = 1;
const FRAME_STDERR: u8 = 2;
const FRAME_ERROR: u8 = 3;
const FRAME_RESIZE: u8 = 4;

/// Runs the session; `Ok` holds the command's exit code.
pub async fn exec(args: ExecArgs) -> Result<i32, CliError> {
    let (service, function) = split_target(&args.target)?;
    let client = Client::new(&args.conn)?;
    let function_path = format!("{}/functions/{}", service_path(service, args.qualifier.as_deref()), seg(function));
    let instance = match &args.instance {
        Some(i) => i.clone(),
        None => pick_instance(&client, &function_path, &args.target).await?,
    };
    let mut call = Call::new(Method::GET, format!("{function_path}/instances/{}/exec", seg(&instance)));
    call.query = exec_query(&args);
    let (url, headers) = client.websocket_url_and_headers(&call);
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| CliError::Usage(format!("cannot make a websocket request of {url}: {e}")))?;
    for (name, value) in headers {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) else {
            return Err(CliError::Usage(format!("header {name} cannot be sent")));
        };
        request.headers_mut().insert(name, value);
    }
    let socket = match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => socket,
        // Refused before the upgrade: an FC error over plain HTTP, as every other operation's.
        Err(WsError::Http(response)) => {
            let (parts, body) = (*response).into_parts();
            let answer =
                Answer { status: parts.status.as_u16(), headers: parts.headers, body: body.unwrap_or_default().into() };
            return Err(answer.error());
        }
        Err(e) => return Err(client.unreachable_because(&e)),
    };
    // Raw mode only once the session is open, so every error above prints on a normal terminal.
    let raw = args.tty.then(RawMode::enter);
    let result = session(socket, &args, raw.as_ref().is_some_and(RawMode::active)).await;
    drop(raw);
    result
}

/// The query InstanceExec reads: `command` once per argument, the streams and the idle timeout.
fn exec_query(args: &ExecArgs) -> Vec<(&'static str, String)> {
    let mut query: Vec<(&'static str, String)> = args.command.iter().map(|c| ("command", c.clone())).collect();
    query.push(("stdin", args.stdin.to_string()));
    query.push(("stdout", "true".into()));
    // A terminal merges the two streams; FC's SDKs ask for no stderr then.
    query.push(("stderr", (!args.tty).to_string()));
    query.push(("tty", args.tty.to_string()));
    if let Some(idle) = args.idle_timeout {
        query.push(("idleTimeout", idle.to_string()));
    }
    query
}

/// The first running instance ListInstances names, said on stderr; none is an error telling what to do.
async fn pick_instance(client: &Client, function_path: &str, target: &str) -> Result<String, CliError> {
    let listed = client.json(Call::new(Method::GET, format!("{function_path}/instances"))).await?;
    let ids: Vec<&str> = listed["instances"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["instanceId"].as_str()).collect())
        .unwrap_or_default();
    match ids.first() {
        Some(first) => {
            let others = if ids.len() > 1 { format!(" (1 of {} running)", ids.len()) } else { String::new() };
            eprintln!("exec into instance {first}{others}");
            Ok((*first).to_owned())
        }
        None => Err(CliError::Nothing(format!(
            "{target} has no running instance: invoke the function first (openfc invoke {target}), or name an instance"
        ))),
    }
}

/// Frames both ways until the server closes the session.
async fn session<S>(socket: S, args: &ExecArgs, raw: bool) -> Result<i32, CliError>
where
    S: futures::Stream<Item = Result<Message, WsError>> + futures::Sink<Message, Error = WsError> + Unpin,
{
    let (mut sink, mut stream) = socket.split();
    if args.tty
        && let Some((width, height)) = terminal::size()
    {
        let _ = sink.send(frame(FRAME_RESIZE, json!({"width": width, "height": height}).to_string().as_bytes())).await;
    }
    let (input_tx, mut input) = mpsc::channel::<Vec<u8>>(8);
    if args.stdin {
        std::thread::spawn(move || read_stdin(input_tx));
    } else {
        drop(input_tx);
    }
    let mut resized =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok().filter(|_| args.tty);
    let mut input_open = args.stdin;
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Binary(data))) => write_frame(&data, raw),
                Some(Ok(Message::Text(text))) => write_frame(text.as_bytes(), raw),
                Some(Ok(Message::Close(close))) => {
                    let reason = close.map(|c| c.reason.to_string()).unwrap_or_default();
                    return exit_code(&reason);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(CliError::Unreachable(format!("the exec session was cut: {e}"))),
                None => return Err(CliError::Unreachable("the exec session was cut before the command ended".into())),
            },
            data = input.recv(), if input_open => match data {
                Some(bytes) => {
                    if sink.send(frame(FRAME_STDIN, &bytes)).await.is_err() {
                        input_open = false;
                    }
                }
                // The end of input: an empty stdin frame (openfc closes the command's stdin; FC's frames
                // have no word for it, and an empty frame carries nothing else). A terminal gets no EOF this
                // way: Ctrl-D reaches it as a byte.
                None => {
                    input_open = false;
                    if !args.tty {
                        let _ = sink.send(frame(FRAME_STDIN, &[])).await;
                    }
                }
            },
            Some(()) = async { match resized.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => {
                if let Some((width, height)) = terminal::size() {
                    let _ = sink.send(frame(FRAME_RESIZE, json!({"width": width, "height": height}).to_string().as_bytes())).await;
                }
            }
        }
    }
}

fn frame(kind: u8, data: &[u8]) -> Message {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(kind);
    out.extend_from_slice(data);
    Message::Binary(out.into())
}

/// A frame from the server onto this process's stdout or stderr (errors from openfc go to stderr too);
/// `raw`: this terminal is in raw mode, where a line ends with `\r\n`.
fn write_frame(data: &[u8], raw: bool) {
    let Some((&kind, rest)) = data.split_first() else { return };
    let result = match kind {
        FRAME_STDOUT => std::io::stdout().lock().write_all(rest).and_then(|_| std::io::stdout().flush()),
        FRAME_STDERR => std::io::stderr().lock().write_all(rest).and_then(|_| std::io::stderr().flush()),
        // openfc's own message (the idle timeout): a line of its own.
        FRAME_ERROR => {
            let end = if raw { "\r\n" } else { "\n" };
            let text = format!("{}{end}", String::from_utf8_lossy(rest).trim_end());
            std::io::stderr().lock().write_all(text.as_bytes())
        }
        _ => Ok(()),
    };
    let _ = result;
}

/// Standard input in chunks as they come, until its end, on a thread of its own (a blocked read must not
/// hold up the runtime; the process exits with the session, whatever the thread is doing).
fn read_stdin(tx: mpsc::Sender<Vec<u8>>) {
    let mut stdin = std::io::stdin();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.blocking_send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        }
    }
}

/// The close reason `exit code N` → N; any other end (`idle timeout`) is a failure of the session.
fn exit_code(reason: &str) -> Result<i32, CliError> {
    match reason.strip_prefix("exit code ").and_then(|n| n.trim().parse::<i32>().ok()) {
        Some(code) => Ok(code),
        None if reason.is_empty() => Err(CliError::Nothing("the exec session ended without an exit code".into())),
        None => Err(CliError::Nothing(format!("the exec session ended: {reason}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_names_each_argument_and_the_streams() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            exec: ExecArgs,
        }
        let cli =
            Cli::try_parse_from(["openfc", "s/f", "-t", "--idle-timeout", "5", "--", "sh", "-c", "x y", "-i"]).unwrap();
        let owned = exec_query(&cli.exec);
        let query: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            query,
            [
                ("command", "sh"),
                ("command", "-c"),
                ("command", "x y"),
                ("command", "-i"),
                ("stdin", "false"),
                ("stdout", "true"),
                ("stderr", "false"),
                ("tty", "true"),
                ("idleTimeout", "5")
            ]
        );
        assert_eq!(cli.exec.instance, None);
        assert!(Cli::try_parse_from(["openfc", "s/f", "c-1"]).is_err(), "the command is required, after --");
    }

    #[test]
    fn the_close_reason_gives_the_exit_code() {
        assert_eq!(exit_code("exit code 0").unwrap(), 0);
        assert_eq!(exit_code("exit code 137").unwrap(), 137);
        assert_eq!(exit_code("idle timeout").unwrap_err().to_string(), "the exec session ended: idle timeout");
        assert_eq!(exit_code("").unwrap_err().exit_code(), 1);
    }
}
