//! Real registries for the registry tests (containers.md §7.2, §7.5): Debian's `docker-registry` on a free
//! loopback port (never :5000), images built by `fixtures/registry-image.sh` and pushed with skopeo.
//! Every process is killed when its guard drops.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub const USER: &str = "fcuser";
pub const PASSWORD: &str = "fcpass";
/// base64("fcuser:fcpass") and base64("fcuser:wrong"), as `docker login` writes them.
pub const AUTH_OK: &str = "ZmN1c2VyOmZjcGFzcw==";
pub const AUTH_WRONG: &str = "ZmN1c2VyOndyb25n";

/// One `docker-registry serve` process and its storage; killed on drop.
pub struct RegistryProc {
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub auth: bool,
    child: Arc<Mutex<Option<Child>>>,
}

impl RegistryProc {
    /// Starts a registry; `auth` adds htpasswd (bcrypt) Basic auth for fcuser/fcpass.
    pub fn start(auth: bool) -> RegistryProc {
        let dir = tempfile::tempdir().unwrap();
        let regdir = dir.path().join("reg");
        let mut yml = format!(
            "version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\nhttp: {{addr: 127.0.0.1:0, secret: openfc-test}}\n",
            regdir.display()
        );
        if auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", USER, PASSWORD])
                .output()
                .expect("htpasswd (apache2-utils)");
            assert!(
                out.status.success(),
                "htpasswd: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, &out.stdout).unwrap();
            yml.push_str(&format!(
                "auth: {{htpasswd: {{realm: openfc-test, path: {}}}}}\n",
                htpasswd.display()
            ));
        }
        let config = dir.path().join("reg.yml");
        std::fs::write(&config, yml).unwrap();
        // A free port can be taken between the probe and the bind: try a few.
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let child = Command::new("/usr/bin/docker-registry")
                .arg("serve")
                .arg(&config)
                .env("REGISTRY_HTTP_ADDR", format!("127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("docker-registry");
            let child = Arc::new(Mutex::new(Some(child)));
            if wait_ready(&child, port, dir.path()) {
                return RegistryProc {
                    port,
                    dir,
                    auth,
                    child,
                };
            }
            kill(&child);
        }
        panic!("docker-registry did not start");
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn regdir(&self) -> PathBuf {
        self.dir.path().join("reg")
    }

    /// SIGKILL now (also callable from a progress callback through `killer`).
    pub fn kill(&self) {
        kill(&self.child);
    }

    /// Something that can kill the registry from another thread.
    pub fn killer(&self) -> impl Fn() + Send + Sync + 'static {
        let child = self.child.clone();
        move || kill(&child)
    }

    /// Pushes `layout:tag` as `repo_tag` (`fc/hello:v1`); `format` is `v2s2` or `oci`.
    pub fn push(&self, layout: &Path, tag: &str, repo_tag: &str, format: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--format",
            format,
        ]);
        if self.auth {
            cmd.args(["--dest-creds", &format!("{USER}:{PASSWORD}")]);
        }
        cmd.arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo_tag}", self.host()));
        run(&mut cmd);
    }

    /// The manifest bytes as skopeo sees them (`skopeo inspect --raw`).
    pub fn inspect_raw(&self, repo_ref: &str) -> Vec<u8> {
        let mut cmd = Command::new("skopeo");
        cmd.args(["inspect", "--raw", "--tls-verify=false"]);
        if self.auth {
            cmd.args(["--creds", &format!("{USER}:{PASSWORD}")]);
        }
        cmd.arg(format!("docker://{}/{repo_ref}", self.host()));
        run(&mut cmd)
    }

    /// PUTs a hand-written manifest or index (skopeo cannot author an index, §7.5).
    pub fn put_manifest(&self, repo: &str, tag: &str, media_type: &str, body: &[u8]) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut req = format!(
            "PUT /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: {}\r\nContent-Type: {media_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.host(),
            body.len()
        );
        if self.auth {
            req.push_str(&format!("Authorization: Basic {AUTH_OK}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 201"), "PUT manifest: {answer}");
    }

    /// The file the registry serves for blob `digest`.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.regdir().join(format!(
            "docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }
}

impl Drop for RegistryProc {
    fn drop(&mut self) {
        kill(&self.child);
    }
}

/// Until the port accepts connections; false if the process exits first (port taken) or 10 s pass.
fn wait_ready(child: &Mutex<Option<Child>>, port: u16, dir: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let exited = child
            .lock()
            .unwrap()
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        if let Some(status) = exited {
            eprintln!(
                "docker-registry exited: {status}: {}",
                std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
            );
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn kill(child: &Mutex<Option<Child>>) {
    let mut guard = child.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(mut c) = guard.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if port != 5000 {
            return port;
        }
    }
}

/// Runs a command, panicking with its stderr if it fails; returns stdout.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Builds `layout:tag` for `arch` with `fixtures/registry-image.sh`; `random_bytes` > 0 adds a big layer.
pub fn build_image(layout: &Path, tag: &str, arch: &str, random_bytes: u64) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/registry-image.sh");
    run(Command::new(script)
        .arg(layout)
        .arg(tag)
        .arg(arch)
        .arg(random_bytes.to_string()));
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// An auth file with `entry` (a JSON object) for `host`.
pub fn auth_file(dir: &Path, host: &str, entry: &str) -> PathBuf {
    let path = dir.join("auth.json");
    std::fs::write(&path, format!(r#"{{"auths":{{"{host}":{entry}}}}}"#)).unwrap();
    path
}
