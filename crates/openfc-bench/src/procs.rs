//! The two server processes under test, their temp directory (all removed on drop, also on error),
//! and what `/proc` tells about them: resident memory, peak memory, CPU time.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::client::{Conn, plain_get};

/// A child process, killed and reaped when dropped.
pub struct Server {
    pub name: &'static str,
    pub addr: SocketAddr,
    child: Child,
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
    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.check_alive()?;
            if let Ok(mut conn) = Conn::open(self.addr).await {
                if let Ok((200, _)) = conn.call(plain_get(self.addr, "/health")).await {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("{} did not become healthy within 30 s", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Both servers and their temp directory; fields drop in order, so the processes die before the
/// directory is removed.
pub struct Servers {
    pub openfc: Server,
    pub bare: Server,
    pub credentials: serde_json::Value,
    pub dir: TempDir,
}

impl Servers {
    pub async fn start(openfc_bin: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("openfc-bench-").tempdir()?;
        let data = dir.path().join("data");
        let log = std::fs::File::create(dir.path().join("openfc.log"))?;
        // Port 0: the OS picks a free port, and credentials.json names the bound endpoint.
        let child = Command::new(openfc_bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", openfc_bin.display()))?;
        let mut openfc = Server { name: "openfc", addr: ([127, 0, 0, 1], 0).into(), child };
        let credentials = read_credentials(&mut openfc, &data.join("credentials.json")).await?;
        let endpoint = credentials["endpoint"].as_str().context("credentials lack endpoint")?;
        openfc.addr = endpoint.trim_start_matches("http://").parse().context("endpoint is not http://IP:PORT")?;

        let mut child = Command::new(std::env::current_exe()?)
            .args(["bare-server", "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("bare-server stdout")?).read_line(&mut line)?;
        let addr = line.trim().strip_prefix("listening on ").context("bare-server did not print its address")?;
        let mut bare = Server { name: "bare-server", addr: addr.parse()?, child };

        openfc.wait_healthy().await.map_err(|e| e.context(log_tail(dir.path())))?;
        bare.wait_healthy().await?;
        Ok(Self { openfc, bare, credentials, dir })
    }

    /// The last lines of openfc's log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(self.dir.path())
    }
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

fn log_tail(dir: &Path) -> String {
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

/// User + system CPU time of a process so far (`/proc/PID/stat`, clock ticks of 10 ms).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after_name.split(' ').map(|f| f.parse().unwrap_or(0)).collect();
    let ticks = fields.get(11).unwrap_or(&0) + fields.get(12).unwrap_or(&0);
    Duration::from_millis(ticks * 10) // CLK_TCK is 100 on Linux
}
