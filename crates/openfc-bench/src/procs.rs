//! The server processes under test, their temp directories (all removed on drop, also on error), CPU
//! pinning with `taskset`, and what `/proc` tells about processes: resident memory, peak memory, CPU
//! time of a process and its descendants.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::client::{Conn, plain_get};

/// A child process, stopped (SIGTERM, then SIGKILL after 10 s) and reaped when dropped.
pub struct Server {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub(crate) child: Child,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited during start-up ({status})", self.name);
        }
        Ok(())
    }

    /// Polls `GET /health` until it answers 200.
    pub(crate) async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.check_alive()?;
            if let Ok(mut conn) = Conn::open(self.addr).await
                && let Ok((200, _)) = conn.call(plain_get(self.addr, "/health")).await {
                    return Ok(());
                }
            if Instant::now() > deadline {
                bail!("{} did not become healthy within 30 s", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls until the port accepts a connection.
    async fn wait_listening(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.check_alive()?;
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} did not listen on {} within 10 s", self.name, self.addr);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // Graceful first: openfc stops its function instances on SIGTERM.
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).stderr(Stdio::null()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `taskset -c CPUS` in front of a command when pinning is wanted.
fn pinned_command(program: &Path, cpus: Option<&str>) -> Command {
    match cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Sets the CPU affinity of every thread of a running process (`taskset -a -p -c`).
pub fn set_affinity(pid: u32, cpus: &str) -> anyhow::Result<()> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .context("running taskset")?;
    if !status.success() {
        bail!("taskset -a -p -c {cpus} {pid} failed ({status})");
    }
    Ok(())
}

/// The CPUs this process may run on (`Cpus_allowed_list`), to restore after pinning.
pub fn allowed_cpus() -> anyhow::Result<String> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with("Cpus_allowed_list:")).context("no Cpus_allowed_list")?;
    Ok(line["Cpus_allowed_list:".len()..].trim().to_owned())
}

/// An `openfc serve` child on a free port with its own temp data directory; the process dies before the
/// directory is removed (field order).
pub struct Openfc {
    pub server: Server,
    pub credentials: serde_json::Value,
    pub dir: TempDir,
}

impl Openfc {
    /// Starts openfc with `extra` flags, under `taskset -c CPUS` when `cpus` is given (its function
    /// instances inherit the affinity).
    pub async fn start(bin: &Path, extra: &[&str], cpus: Option<&str>) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("openfc-bench-").tempdir()?;
        let data = dir.path().join("data");
        let log = std::fs::File::create(dir.path().join("openfc.log"))?;
        // Port 0: the OS picks a free port, and credentials.json names the bound endpoint.
        let child = pinned_command(bin, cpus)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut server = Server { name: "openfc", addr: ([127, 0, 0, 1], 0).into(), child };
        let credentials = read_credentials(&mut server, &data.join("credentials.json"))
            .await
            .map_err(|e| e.context(log_tail(dir.path())))?;
        let endpoint = credentials["endpoint"].as_str().context("credentials lack endpoint")?;
        server.addr = endpoint.trim_start_matches("http://").parse().context("endpoint is not http://IP:PORT")?;
        server.wait_healthy().await.map_err(|e| e.context(log_tail(dir.path())))?;
        Ok(Self { server, credentials, dir })
    }

    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// The last lines of openfc's log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(self.dir.path())
    }

    /// Lines of openfc's log that are warnings or errors.
    pub fn log_problems(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.path().join("openfc.log")).unwrap_or_default();
        log.lines().filter(|l| l.contains(" WARN ") || l.contains(" ERROR ") || l.contains("panicked")).map(str::to_owned).collect()
    }

    /// Stops openfc (SIGTERM) and returns its descendants (function instances) still running afterwards.
    pub fn stop(self) -> Vec<String> {
        let before = descendants(self.pid());
        drop(self);
        std::thread::sleep(Duration::from_millis(200));
        before
            .into_iter()
            .filter(|(pid, cmdline)| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let zombie = stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z'));
                !zombie && !stat.is_empty() && process_cmdline(*pid) == *cmdline
            })
            .map(|(pid, cmdline)| format!("{pid} {cmdline}"))
            .collect()
    }
}

/// openfc plus the bare axum handler of the control-plane benchmark.
pub struct Servers {
    pub openfc: Openfc,
    pub bare: Server,
}

impl Servers {
    pub async fn start(openfc_bin: &Path) -> anyhow::Result<Self> {
        let openfc = Openfc::start(openfc_bin, &[], None).await?;
        let mut child = Command::new(std::env::current_exe()?)
            .args(["bare-server", "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("bare-server stdout")?).read_line(&mut line)?;
        let addr = line.trim().strip_prefix("listening on ").context("bare-server did not print its address")?;
        let mut bare = Server { name: "bare-server", addr: addr.parse()?, child };
        bare.wait_healthy().await?;
        Ok(Self { openfc, bare })
    }
}

/// A free TCP port on the loopback (released again: a child binds it next).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// This binary as the custom runtime's HTTP server on the host, optionally pinned.
pub async fn start_runtime_server(cpus: Option<&str>) -> anyhow::Result<Server> {
    let port = free_port()?;
    let child = pinned_command(&std::env::current_exe()?, cpus)
        .arg("runtime-server")
        .env("FC_CUSTOM_LISTEN_PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()?;
    let mut server = Server { name: "runtime server", addr: ([127, 0, 0, 1], port).into(), child };
    server.wait_listening().await?;
    Ok(server)
}

async fn read_credentials(server: &mut Server, path: &Path) -> anyhow::Result<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        server.check_alive()?;
        // The file may be seen half-written: retry until it parses.
        if let Some(v) = std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("openfc wrote no {} within 30 s", path.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("openfc.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    format!("openfc log (last lines):\n{}", lines[lines.len().saturating_sub(10)..].join("\n"))
}

/// A `kB` field of `/proc/PID/status`, in bytes.
pub fn status_bytes(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with(field)).with_context(|| format!("no {field} in status"))?;
    let kb: u64 = line[field.len()..].trim().trim_end_matches("kB").trim().parse()?;
    Ok(kb * 1024)
}

/// Resets the peak resident size (`VmHWM`) to the current one.
pub fn reset_peak(pid: u32) -> anyhow::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("writing clear_refs")
}

/// `(ppid, user + system CPU ticks)` of a process, from `/proc/PID/stat`.
fn stat_fields(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.rsplit_once(") ")?.1;
    let fields: Vec<&str> = after_name.split(' ').collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    Some((num(1) as u32, num(11) + num(12)))
}

/// Every process: pid → (ppid, CPU ticks).
fn process_table() -> HashMap<u32, (u32, u64)> {
    let mut table = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok())
            && let Some(fields) = stat_fields(pid)
        {
            table.insert(pid, fields);
        }
    }
    table
}

/// `root` and all its descendants.
fn tree(table: &HashMap<u32, (u32, u64)>, root: u32) -> Vec<u32> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(table.iter().filter(|(_, (ppid, _))| *ppid == parent).map(|(pid, _)| *pid));
        i += 1;
    }
    out
}

fn process_cmdline(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw).replace('\0', " ").trim().to_owned()
}

/// The descendants of a process with their command lines.
fn descendants(pid: u32) -> Vec<(u32, String)> {
    let table = process_table();
    tree(&table, pid).into_iter().skip(1).map(|p| (p, process_cmdline(p))).collect()
}

/// User + system CPU time of one process so far (clock ticks of 10 ms).
pub fn cpu_time(pid: u32) -> Duration {
    Duration::from_millis(stat_fields(pid).map_or(0, |(_, t)| t) * 10)
}

/// Voluntary context switches so far of every thread of a process and its living descendants: each is a sleep
/// (waiting for a socket, a lock, a wake-up from another thread), so per request they count the wake-ups a path
/// costs. Preemptions are left out: they count the machine's other load more than the path.
pub fn tree_sleeps(pid: u32) -> u64 {
    let table = process_table();
    tree(&table, pid).iter().map(|p| process_sleeps(*p)).sum()
}

fn process_sleeps(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
    tasks
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .map(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// User + system CPU time so far of a process and its living descendants (clock ticks of 10 ms).
pub fn tree_cpu_time(pid: u32) -> Duration {
    let table = process_table();
    let ticks: u64 = tree(&table, pid).iter().filter_map(|p| table.get(p)).map(|(_, t)| t).sum();
    Duration::from_millis(ticks * 10) // CLK_TCK is 100 on Linux
}
