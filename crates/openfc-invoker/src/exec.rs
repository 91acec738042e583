//! InstanceExec on this node: a command started inside one of a function's running instances (its namespaces,
//! cgroups, user, limits and syscall filter: `openfc_sandbox::exec`), with pipes or a terminal for its standard
//! streams. The session (websocket framing, idle timeout) is the HTTP layer's; this module finds the instance,
//! starts the process and hands back its streams.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWrite};
use tokio::sync::mpsc;

use crate::Invoker;
use crate::instance::Instance;

/// How an instance's runtime runs, kept so that a command can run the same way.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    /// The namespace's init (host pid); 0 for a process that had ended before it was seen.
    pub init: u32,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub nofile: u64,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
}

impl Profile {
    pub(crate) fn of(sandbox: &openfc_sandbox::Spec, init: u32) -> Profile {
        Profile {
            init,
            uid: sandbox.uid,
            gid: sandbox.gid,
            groups: sandbox.groups.clone(),
            nofile: sandbox.nofile,
            env: sandbox.env.clone(),
            cwd: sandbox.cwd.clone(),
        }
    }
}

/// What the caller asked for.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub argv: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// A terminal (of `cols` × `rows`) for all three streams; its output comes as stdout.
    pub tty: Option<(u16, u16)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("no instance {0} of this function runs on this node")]
    NoInstance(String),
    #[error("instance {0} has stopped")]
    Ended(String),
    #[error("starting the command: {0}")]
    Start(String),
}

/// Which standard stream a piece of output came from (the InstanceExec frame's first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout = 1,
    Stderr = 2,
}

/// A running command. Output arrives on `output` until both streams end; `input` is its stdin (or terminal),
/// when asked for. Dropping the session kills the command.
pub struct ExecSession {
    pub input: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    pub output: mpsc::Receiver<(Stream, Bytes)>,
    child: tokio::process::Child,
    terminal: Option<std::os::fd::OwnedFd>,
    /// The instance stays (its directories, its cgroup) while the command runs in it.
    _instance: Arc<Instance>,
}

impl ExecSession {
    /// Waits for the command's end: its exit status (128 + signal for a signal; 126: it could not start).
    pub async fn wait(&mut self) -> i32 {
        match self.child.wait().await {
            Ok(s) => s.code().unwrap_or(137),
            Err(_) => 137,
        }
    }

    /// Resizes the terminal (no terminal: nothing to do).
    pub fn resize(&self, cols: u16, rows: u16) {
        if let Some(t) = &self.terminal {
            use std::os::fd::AsFd;
            let _ = openfc_sandbox::exec::resize_terminal(t.as_fd(), cols, rows);
        }
    }

    /// Whether the command has a terminal (its input then ends only by what is typed, e.g. Ctrl-D).
    pub fn has_terminal(&self) -> bool {
        self.terminal.is_some()
    }

    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Forwards one stream into the session's channel, in the pieces it is read in.
fn forward(mut from: impl tokio::io::AsyncRead + Send + Unpin + 'static, stream: Stream, to: mpsc::Sender<(Stream, Bytes)>) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.send((stream, Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
}

impl Invoker {
    /// Starts `req` in the instance `id` of the function, if it runs on this node.
    pub fn exec(&self, account: &str, service: &str, function: &str, id: &str, req: ExecRequest) -> Result<ExecSession, ExecError> {
        let instance = self.find_instance(account, service, function, id).ok_or_else(|| ExecError::NoInstance(id.to_owned()))?;
        if instance.exited() || instance.exec.init == 0 {
            return Err(ExecError::Ended(id.to_owned()));
        }
        let runtime = crate::instance::init_pid(instance.exec.init).ok_or_else(|| ExecError::Ended(id.to_owned()))?;
        let profile = &instance.exec;
        let spec = openfc_sandbox::exec::ExecSpec {
            target: runtime,
            uid: profile.uid,
            gid: profile.gid,
            groups: profile.groups.clone(),
            nofile: profile.nofile,
            seccomp: true,
            argv: req.argv.clone(),
            env: profile.env.clone(),
            cwd: profile.cwd.clone(),
            tty: req.tty.is_some(),
        };
        let json = serde_json::to_string(&spec).map_err(|e| ExecError::Start(e.to_string()))?;
        let groups = instance.cgroup.as_ref().map(|c| c.dirs().iter().map(|d| d.to_string_lossy().into_owned()).collect::<Vec<_>>().join("\n"));
        let mut cmd = tokio::process::Command::new(&self.shared.self_exe);
        cmd.arg(openfc_sandbox::exec::COMMAND)
            .env_clear()
            .env(openfc_sandbox::exec::SPEC_ENV, json)
            .env(openfc_sandbox::CGROUPS_ENV, groups.unwrap_or_default())
            .kill_on_drop(true);
        let (tx, rx) = mpsc::channel(64);
        let mut terminal = None;
        let mut input: Option<Box<dyn AsyncWrite + Send + Unpin>> = None;
        match req.tty {
            Some((cols, rows)) => {
                // The instance's own devpts, so the command's terminal has a name there; the host's if it has none.
                let ptmx = PathBuf::from(format!("/proc/{}/root/dev/pts/ptmx", profile.init));
                let (leader, follower) = openfc_sandbox::exec::open_terminal_at(&ptmx, cols, rows)
                    .or_else(|_| openfc_sandbox::exec::open_terminal(cols, rows))
                    .map_err(|e| ExecError::Start(format!("a terminal: {e}")))?;
                let dup = |fd: &std::os::fd::OwnedFd| fd.try_clone().map_err(|e| ExecError::Start(e.to_string()));
                cmd.stdin(Stdio::from(dup(&follower)?)).stdout(Stdio::from(dup(&follower)?)).stderr(Stdio::from(follower));
                // The terminal's leader side is read and written on blocking threads (tokio's File).
                forward(tokio::fs::File::from_std(std::fs::File::from(dup(&leader)?)), Stream::Stdout, tx.clone());
                if req.stdin {
                    input = Some(Box::new(tokio::fs::File::from_std(std::fs::File::from(dup(&leader)?))));
                }
                terminal = Some(leader);
            }
            None => {
                cmd.stdin(if req.stdin { Stdio::piped() } else { Stdio::null() })
                    .stdout(if req.stdout { Stdio::piped() } else { Stdio::null() })
                    .stderr(if req.stderr { Stdio::piped() } else { Stdio::null() });
            }
        }
        let mut child = cmd.spawn().map_err(|e| ExecError::Start(e.to_string()))?;
        if req.tty.is_none() {
            if let Some(out) = child.stdout.take() {
                forward(out, Stream::Stdout, tx.clone());
            }
            if let Some(err) = child.stderr.take() {
                forward(err, Stream::Stderr, tx.clone());
            }
            input = child.stdin.take().map(|s| Box::new(s) as Box<dyn AsyncWrite + Send + Unpin>);
        }
        // The channel ends when the forwarders' senders are gone.
        drop(tx);
        metrics::counter!("openfc_instance_exec_total").increment(1);
        Ok(ExecSession { input, output: rx, child, terminal, _instance: instance })
    }

    fn find_instance(&self, account: &str, service: &str, function: &str, id: &str) -> Option<Arc<Instance>> {
        let pools = self.pools.lock().expect("pools");
        pools
            .values()
            .filter(|p| p.account == account && p.service == service && p.function == function)
            .find_map(|p| p.instances.lock().expect("instances").iter().find(|i| i.id == id).cloned())
    }
}
