//! The image benchmark's fixtures: a private docker-registry on loopback, and the images pushed to it (a
//! busybox root, big random files, two images sharing a base layer), built with tar and skopeo.

use super::*;

pub(super) fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Runs a command to completion; its stdout, or an error with both outputs.
pub(super) fn run_cmd(cmd: &mut Command) -> anyhow::Result<String> {
    let what = format!("{cmd:?}");
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(super) fn cmd(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args);
    c
}

/// `docker-registry serve` on 127.0.0.1:<free port>, storage under the work dir; killed when dropped.
pub(super) struct Registry {
    pub(super) host: String,
    pub(super) child: Child,
}

impl Registry {
    pub(super) async fn start(work: &Path) -> anyhow::Result<Self> {
        let port = loop {
            let p = procs::free_port()?;
            if p != 5000 {
                break p;
            }
        };
        let dir = work.join("registry");
        std::fs::create_dir_all(dir.join("storage"))?;
        let config = dir.join("config.yml");
        std::fs::write(&config, REGISTRY_CONFIG.replace("ROOT", &dir.join("storage").to_string_lossy()))?;
        let log_path = dir.join("registry.log");
        let log = std::fs::File::create(&log_path)?;
        let host = format!("127.0.0.1:{port}");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .env("REGISTRY_HTTP_ADDR", &host)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting docker-registry")?;
        let mut reg = Registry { host, child };
        let addr: SocketAddr = reg.host.parse()?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = reg.child.try_wait()? {
                bail!("docker-registry exited ({status}): {}", std::fs::read_to_string(&log_path).unwrap_or_default());
            }
            if let Ok(mut conn) = Conn::open(addr).await
                && let Ok((200, _)) = conn.call(plain_get(addr, "/v2/")).await
            {
                return Ok(reg);
            }
            if Instant::now() > deadline {
                bail!("docker-registry not ready on {} within 15 s", reg.host);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What was pushed: references and the layers (digest, compressed bytes) of each.
#[derive(Clone)]
pub(super) struct Images {
    pub(super) host: String,
    pub(super) big: String,
    pub(super) big_layers: Vec<(String, u64)>,
    pub(super) server: String,
    pub(super) shared_a: String,
    pub(super) shared_b: String,
    pub(super) shared_a_layers: Vec<(String, u64)>,
    pub(super) shared_b_layers: Vec<(String, u64)>,
}

/// One umoci layout: `base` (busybox root), `big` = base + the random files, `server` = base + this binary
/// as `/bootstrap` and its libraries, `shared-a`/`shared-b` = the shared base (busybox + random files, one
/// layer) + a random file of their own. Then all pushed to the registry.
pub(super) fn build_and_push(work: &Path, host: &str) -> anyhow::Result<Images> {
    let layout = work.join("layout");
    let layout_s = layout.to_string_lossy().into_owned();
    let image = |tag: &str| format!("{layout_s}:{tag}");
    run_cmd(&mut cmd("umoci", &["init", "--layout", &layout_s]))?;
    run_cmd(&mut cmd("umoci", &["new", "--image", &image("empty")]))?;
    let add_layer = |from: &str, to: &str, stage: &Path| -> anyhow::Result<()> {
        let tar = work.join(format!("{to}.tar"));
        tar_layer(stage, &tar)?;
        run_cmd(cmd("umoci", &["raw", "add-layer", "--no-history", "--image", &image(from), "--tag", to]).arg(&tar))?;
        std::fs::remove_file(&tar)?;
        std::fs::remove_dir_all(stage)?;
        Ok(())
    };
    let config = |tag: &str, flags: &[&str]| -> anyhow::Result<()> {
        run_cmd(cmd("umoci", &["config", "--no-history", "--image", &image(tag), "--os=linux", "--architecture=amd64"]).args(flags))?;
        Ok(())
    };

    let stage = work.join("stage-base");
    busybox_root(&stage)?;
    add_layer("empty", "base", &stage)?;

    let stage = work.join("stage-big");
    for i in 0..BIG_FILES {
        random_file(&stage.join(format!("data/part-{i}.bin")), BIG_FILE_BYTES)?;
    }
    add_layer("base", "big", &stage)?;
    config("big", &["--config.cmd=/bin/sh"])?;

    let stage = work.join("stage-server");
    server_files(&stage)?;
    add_layer("base", "server", &stage)?;
    config("server", &["--config.entrypoint=/bootstrap", "--config.env=PATH=/bin"])?;

    let stage = work.join("stage-shared");
    busybox_root(&stage)?;
    for i in 0..SHARED_FILES {
        random_file(&stage.join(format!("opt/base/part-{i}.bin")), SHARED_FILE_BYTES)?;
    }
    add_layer("empty", "shared", &stage)?;
    for (tag, name) in [("shared-a", "a"), ("shared-b", "b")] {
        let stage = work.join(format!("stage-{tag}"));
        random_file(&stage.join(format!("app/{name}.bin")), OWN_LAYER_BYTES)?;
        add_layer("shared", tag, &stage)?;
        config(tag, &["--config.cmd=/bin/sh"])?;
    }

    // The big image first, then the rest in parallel (the shared base is uploaded by whichever comes first).
    let reference = |repo: &str| format!("{host}/bench/{repo}:v1");
    let push = |tag: &str, repo: &str| -> anyhow::Result<String> {
        let dest = format!("docker://{}", reference(repo));
        run_cmd(&mut cmd("skopeo", &["--insecure-policy", "copy", "-q", "--dest-tls-verify=false", "--format", "v2s2", &format!("oci:{layout_s}:{tag}"), &dest]))?;
        Ok(reference(repo))
    };
    let big = push("big", "big")?;
    let (server, shared_a, shared_b) = std::thread::scope(|s| {
        let a = s.spawn(|| push("server", "server"));
        let b = s.spawn(|| push("shared-a", "shared-a"));
        let c = s.spawn(|| push("shared-b", "shared-b"));
        let join = |h: std::thread::ScopedJoinHandle<'_, anyhow::Result<String>>| h.join().map_err(|_| anyhow::anyhow!("push panicked"))?;
        anyhow::Ok((join(a)?, join(b)?, join(c)?))
    })?;
    Ok(Images {
        host: host.to_owned(),
        big,
        big_layers: layers_of(&layout, "big")?,
        server,
        shared_a,
        shared_b,
        shared_a_layers: layers_of(&layout, "shared-a")?,
        shared_b_layers: layers_of(&layout, "shared-b")?,
    })
}

/// A layer tar of a staged directory: top-level entries by name, numeric owners 0, fixed mtime.
pub(super) fn tar_layer(stage: &Path, tar: &Path) -> anyhow::Result<()> {
    let mut top: Vec<String> = std::fs::read_dir(stage)?.map(|e| Ok(e?.file_name().to_string_lossy().into_owned())).collect::<anyhow::Result<_>>()?;
    top.sort();
    let mut c = cmd("tar", &["--sort=name", "--numeric-owner", "--owner=0", "--group=0", &format!("--mtime={MTIME}"), "-C"]);
    c.arg(stage).arg("-cf").arg(tar).args(&top);
    run_cmd(&mut c)?;
    Ok(())
}

/// busybox's image, in small: static busybox and some applet links, passwd and group, no /proc, /dev, /tmp.
pub(super) fn busybox_root(stage: &Path) -> anyhow::Result<()> {
    for d in ["bin", "etc", "root"] {
        std::fs::create_dir_all(stage.join(d))?;
    }
    std::fs::copy(BUSYBOX, stage.join("bin/busybox"))?;
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", stage.join("bin").join(a))?;
    }
    std::fs::write(stage.join("etc/passwd"), PASSWD)?;
    std::fs::write(stage.join("etc/group"), GROUP)?;
    Ok(())
}

pub(super) fn random_file(path: &Path, size: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(path.parent().context("no parent")?)?;
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len());
        rand::rng().fill_bytes(&mut buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n;
    }
    f.flush()?;
    Ok(())
}

/// This binary as `/bootstrap` and the shared libraries it loads (as `ldd` lists them, copied to the same
/// paths), so the image runs the very program the custom function's `/code/bootstrap` is.
pub(super) fn server_files(stage: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(stage)?;
    let exe = std::env::current_exe()?;
    std::fs::copy(&exe, stage.join("bootstrap"))?;
    let ldd = run_cmd(Command::new("ldd").arg(&exe))?;
    for line in ldd.lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else { continue };
        let dest = stage.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().context("library path without parent")?)?;
        // Follows symlinks: the image gets the files themselves.
        std::fs::copy(path, &dest).with_context(|| format!("copying {path}"))?;
    }
    Ok(())
}

/// The layers (digest, size) of a tag in the layout.
pub(super) fn layers_of(layout: &Path, tag: &str) -> anyhow::Result<Vec<(String, u64)>> {
    let blob = |digest: &str| -> anyhow::Result<serde_json::Value> {
        let hex = digest.strip_prefix("sha256:").context("digest not sha256")?;
        Ok(serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex))?)?)
    };
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)?;
    let entry = index["manifests"]
        .as_array()
        .context("index without manifests")?
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .with_context(|| format!("no tag {tag} in the layout"))?;
    let manifest = blob(entry["digest"].as_str().context("manifest digest")?)?;
    manifest["layers"]
        .as_array()
        .context("manifest without layers")?
        .iter()
        .map(|l| Ok((l["digest"].as_str().context("layer digest")?.to_owned(), l["size"].as_u64().context("layer size")?)))
        .collect()
}
