//! `openfc runtimes install|list`: the modules Function Compute's Python and Node.js runtimes ship built in (user
//! code imports `oss2` or requires `ali-oss` without bundling them), installed from PyPI and npm as one pinned set
//! (`crates/openfc/builtins/`, embedded in the binary: the whole dependency closure, so no resolver runs).
//!
//! Layout of the built-ins directory (`--builtins-dir`, default DATA_DIR/builtins), which every code-runtime
//! instance sees read-only at `/var/fc/runtime/builtins` (`openfc_invoker::runtime::BUILTINS_MOUNT`):
//!
//! ```text
//! v1 -> v1-<id>                    the current set, a symlink swapped atomically (`BUILTINS_SET`)
//! v1-<id>/python/...               pip --target (the shim puts it on sys.path after the code and layers)
//! v1-<id>/nodejs/node_modules/...  npm ci (the shim appends it to NODE_PATH, after the code and layers)
//! v1-<id>/set.json                 what was installed, written last
//! ```
//!
//! `<id>` is a hash of the pinned files and the interpreter's version (compiled wheels are per CPython minor
//! version): a changed pin or interpreter installs a new set beside the old one, which instances started later see
//! through the moved link, and which `prune` removes. A set is built in a temporary directory and renamed into
//! place, under a lock (two installs at once: the second waits and finds the set done). Re-running with nothing
//! changed is a stat.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use openfc_invoker::runtime::BUILTINS_SET;
use sha2::Digest;

use crate::config::StoreArgs;

const PYTHON_REQUIREMENTS: &str = include_str!("../builtins/python-requirements.txt");
const NODE_PACKAGE: &str = include_str!("../builtins/nodejs/package.json");
const NODE_LOCK: &str = include_str!("../builtins/nodejs/package-lock.json");
/// Changes when what `install` does to a set changes (not only its pins).
const LAYOUT: &str = "openfc-builtins-layout-1";

#[derive(Debug, Clone, Args)]
pub struct RuntimesArgs {
    /// Where the built-ins are installed, shared by every data directory that points here
    /// [default: DATA_DIR/builtins].
    #[arg(long, global = true, env = "OPENFC_BUILTINS_DIR")]
    pub builtins_dir: Option<PathBuf>,
    /// The Python interpreter the python3.x runtimes run (compiled wheels are installed for it)
    /// [default: /usr/bin/python3].
    #[arg(long, global = true, env = "OPENFC_PYTHON")]
    pub python: Option<PathBuf>,
    /// The npm that installs the Node.js modules [default: npm on PATH].
    #[arg(long, global = true, env = "OPENFC_NPM")]
    pub npm: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum RuntimesAction {
    /// Install the pinned set from PyPI and npm (idempotent: nothing to do when it is already there).
    Install {
        /// Build the set again even when it is installed.
        #[arg(long)]
        force: bool,
    },
    /// Show the installed set: its directory and every package with its version.
    List,
    /// Remove the sets an install replaced (kept by `install`: instances started before the switch may still read
    /// them; prune once those are gone, e.g. after restarting openfc).
    Prune,
}

pub fn run(store: &StoreArgs, args: &RuntimesArgs, action: RuntimesAction) -> anyhow::Result<()> {
    let dir = crate::config::resolve_builtins_dir(store, args.builtins_dir.as_deref())?;
    let python = args.python.clone().unwrap_or_else(|| PathBuf::from("/usr/bin/python3"));
    match action {
        RuntimesAction::Install { force } => install(&dir, &python, args.npm.as_deref().unwrap_or(Path::new("npm")), force),
        RuntimesAction::List => list(&dir),
        RuntimesAction::Prune => prune(&dir),
    }
}

/// The Python version a set is built for (`3.11`): wheels with compiled code are per minor version.
fn python_version(python: &Path) -> anyhow::Result<String> {
    let out = Command::new(python)
        .args(["-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .with_context(|| format!("running {} (set --python)", python.display()))?;
    anyhow::ensure!(out.status.success(), "{} failed: {}", python.display(), String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The set's directory name: `v1-` and 12 hex digits of the pins, the layout and the Python version.
fn set_name(python_version: &str) -> String {
    let mut h = sha2::Sha256::new();
    for part in [LAYOUT, PYTHON_REQUIREMENTS, NODE_PACKAGE, NODE_LOCK, python_version] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    format!("{BUILTINS_SET}-{}", &hex::encode(h.finalize())[..12])
}

/// The pinned Python requirements, `name==version` (comments and blank lines dropped).
fn python_pins() -> Vec<&'static str> {
    PYTHON_REQUIREMENTS.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
}

/// The pinned top-level Node.js modules, `name@version`.
fn node_pins() -> anyhow::Result<Vec<String>> {
    let pkg: serde_json::Value = serde_json::from_str(NODE_PACKAGE).context("the embedded package.json")?;
    let deps = pkg["dependencies"].as_object().context("package.json without dependencies")?;
    Ok(deps.iter().map(|(k, v)| format!("{k}@{}", v.as_str().unwrap_or("?"))).collect())
}

/// Where the current set's link points, if it names a complete set.
fn current(dir: &Path) -> Option<String> {
    let target = std::fs::read_link(dir.join(BUILTINS_SET)).ok()?;
    let name = target.to_str()?.to_owned();
    dir.join(&name).join("set.json").is_file().then_some(name)
}

fn install(dir: &Path, python: &Path, npm: &Path, force: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let version = python_version(python)?;
    let name = set_name(&version);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    set_mode(dir, 0o755)?;
    if !force && current(dir).as_deref() == Some(name.as_str()) {
        println!("runtime built-ins {name} are installed in {} (nothing to do)", dir.display());
        return Ok(());
    }
    // One installer at a time per directory; the loser finds the set done.
    let lock = std::fs::File::create(dir.join(".lock")).with_context(|| format!("creating {}/.lock", dir.display()))?;
    lock.lock().context("locking the built-ins directory")?;
    if !force && current(dir).as_deref() == Some(name.as_str()) {
        println!("runtime built-ins {name} were installed meanwhile in {}", dir.display());
        return Ok(());
    }
    if !Command::new(python).args(["-m", "pip", "--version"]).output().is_ok_and(|o| o.status.success()) {
        bail!("{} has no pip: install Debian's python3-pip (or point --python at an interpreter with pip)", python.display());
    }
    println!("installing runtime built-ins {name} into {}", dir.display());
    let tmp = dir.join(format!(".tmp-{name}"));
    remove_dir(&tmp)?;
    std::fs::create_dir_all(tmp.join("python"))?;
    std::fs::create_dir_all(tmp.join("nodejs"))?;

    let pins = python_pins();
    println!("[1/2] Python {version}: {} pinned packages with {} -m pip (--no-deps)", pins.len(), python.display());
    pip_install(&tmp, python)?;
    let modules = node_pins()?;
    println!("[2/2] Node.js: {} pinned modules with {} ci (lockfile, no install scripts)", modules.len(), npm.display());
    npm_ci(&tmp, npm)?;

    let record = serde_json::json!({
        "set": name,
        "python": {"interpreter": python.display().to_string(), "version": version, "packages": pins},
        "nodejs": {"modules": modules},
    });
    std::fs::write(tmp.join("set.json"), serde_json::to_vec_pretty(&record)?)?;
    // Instances run as nobody: everything readable, directories searchable.
    make_readable(&tmp)?;
    let final_dir = dir.join(&name);
    remove_dir(&final_dir)?;
    std::fs::rename(&tmp, &final_dir).with_context(|| format!("moving the set to {}", final_dir.display()))?;
    switch_link(dir, &name)?;
    remove_sets(dir, &name, false);
    println!("installed runtime built-ins {name} in {:.1} s; `openfc runtimes list` shows them", started.elapsed().as_secs_f64());
    Ok(())
}

/// The Python set into `tmp/python`: every pin, no dependency resolution (`--no-deps`: the closure is pinned).
fn pip_install(tmp: &Path, python: &Path) -> anyhow::Result<()> {
    let reqs = tmp.join("python-requirements.txt");
    std::fs::write(&reqs, PYTHON_REQUIREMENTS)?;
    let mut pip = Command::new(python);
    pip.args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off", "--no-deps", "--target"])
        .arg(tmp.join("python"))
        .arg("-r")
        .arg(&reqs);
    // A few pins are source distributions (pure Python; crcmod falls back to pure Python without a compiler):
    // built with the interpreter's own setuptools when it has them, else in pip's isolated build environment.
    if Command::new(python).args(["-I", "-c", "import setuptools, wheel"]).output().is_ok_and(|o| o.status.success()) {
        pip.arg("--no-build-isolation");
    }
    run_step(pip, "pip install")
}

/// The Node.js set into `tmp/nodejs/node_modules`, exactly as the lockfile says (integrity hashes checked).
fn npm_ci(tmp: &Path, npm: &Path) -> anyhow::Result<()> {
    std::fs::write(tmp.join("nodejs/package.json"), NODE_PACKAGE)?;
    std::fs::write(tmp.join("nodejs/package-lock.json"), NODE_LOCK)?;
    let mut ci = Command::new(npm);
    // shallow: only the listed modules at the top of node_modules, their dependencies beneath them, as FC's
    // global install has them (a function cannot require a dependency FC does not offer).
    ci.args(["ci", "--install-strategy=shallow", "--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier"])
        .current_dir(tmp.join("nodejs"));
    run_step(ci, "npm ci")
}

fn run_step(mut cmd: Command, what: &str) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("starting {what} ({:?})", cmd.get_program()))?;
    if !status.success() {
        bail!("{what} failed ({status}); nothing was changed in the installed set");
    }
    Ok(())
}

/// Points `v1` at `name`: a new link renamed over the old one, so readers see one or the other.
fn switch_link(dir: &Path, name: &str) -> anyhow::Result<()> {
    let link = dir.join(BUILTINS_SET);
    if std::fs::symlink_metadata(&link).is_ok_and(|m| !m.file_type().is_symlink()) {
        bail!("{} is not a symlink: move it away and run `openfc runtimes install` again", link.display());
    }
    let tmp_link = dir.join(format!(".{BUILTINS_SET}.link-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp_link);
    std::os::unix::fs::symlink(name, &tmp_link)?;
    std::fs::rename(&tmp_link, &link).with_context(|| format!("switching {}", link.display()))
}

/// Removes leftovers of interrupted installs and, with `old_sets`, the sets other than `keep` (under the lock: no
/// install is running). Earlier sets stay by default: a running Node.js instance resolved its modules to the set's
/// own directory and may still load files from it.
fn remove_sets(dir: &Path, keep: &str, old_sets: bool) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let prefix = format!("{BUILTINS_SET}-");
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let old_set = old_sets && n.starts_with(&prefix) && n != keep;
        if (old_set || n.starts_with(".tmp-")) && e.path().is_dir()
            && let Err(err) = remove_dir(&e.path())
        {
            eprintln!("could not remove {}: {err:#}", e.path().display());
        }
    }
}

fn remove_dir(p: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).with_context(|| format!("removing {}", p.display())),
        _ => Ok(()),
    }
}

fn set_mode(p: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).with_context(|| format!("chmod {}", p.display()))
}

/// Directories 0755, files readable by all (their exec bits kept), symlinks untouched.
fn make_readable(root: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        set_mode(&d, 0o755)?;
        for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let e = e?;
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                let mode = e.metadata()?.permissions().mode();
                if mode & 0o444 != 0o444 {
                    set_mode(&e.path(), (mode | 0o444) & 0o7777)?;
                }
            }
        }
    }
    Ok(())
}

fn prune(dir: &Path) -> anyhow::Result<()> {
    let Some(name) = current(dir) else {
        println!("no runtime built-ins are installed in {}; nothing to prune", dir.display());
        return Ok(());
    };
    let lock = std::fs::File::create(dir.join(".lock")).with_context(|| format!("creating {}/.lock", dir.display()))?;
    lock.lock().context("locking the built-ins directory")?;
    remove_sets(dir, &name, true);
    println!("kept {name}; removed the earlier sets in {}", dir.display());
    Ok(())
}

fn list(dir: &Path) -> anyhow::Result<()> {
    let Some(name) = current(dir) else {
        println!("no runtime built-ins are installed in {}; run `openfc runtimes install`", dir.display());
        return Ok(());
    };
    let set = dir.join(&name);
    println!("runtime built-ins {name} in {} (instances see them at {})", set.display(), openfc_invoker::runtime::BUILTINS_MOUNT);
    println!("python ({}):", set.join("python").display());
    let mut py = python_installed(&set.join("python"))?;
    py.sort_by_key(|(n, _)| n.to_lowercase());
    for (n, v) in py {
        println!("  {n}=={v}");
    }
    let modules = set.join("nodejs/node_modules");
    println!("nodejs ({}):", modules.display());
    for (n, v) in node_installed(&modules)? {
        println!("  {n}@{v}");
    }
    Ok(())
}

/// Name and version of every distribution pip installed (its `*.dist-info/METADATA`).
fn python_installed(site: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(site).with_context(|| format!("reading {}", site.display()))?.flatten() {
        if !e.file_name().to_string_lossy().ends_with(".dist-info") {
            continue;
        }
        let Ok(meta) = std::fs::read_to_string(e.path().join("METADATA")) else { continue };
        let field = |k: &str| meta.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_owned());
        if let (Some(n), Some(v)) = (field("Name:"), field("Version:")) {
            out.push((n, v));
        }
    }
    Ok(out)
}

/// Name and version of every module at the top of `node_modules` (scoped ones included), sorted.
fn node_installed(modules: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut dirs = Vec::new();
    for e in std::fs::read_dir(modules).with_context(|| format!("reading {}", modules.display()))?.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with('@') {
            dirs.extend(std::fs::read_dir(e.path())?.flatten().map(|s| s.path()));
        } else if !n.starts_with('.') {
            dirs.push(e.path());
        }
    }
    let mut out = Vec::new();
    for d in dirs {
        let Ok(text) = std::fs::read_to_string(d.join("package.json")) else { continue };
        let pkg: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if let (Some(n), Some(v)) = (pkg["name"].as_str(), pkg["version"].as_str()) {
            out.push((n.to_owned(), v.to_owned()));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_python_pin_is_exact_and_the_closure_is_whole() {
        let pins = python_pins();
        assert!(pins.iter().all(|p| p.split_once("==").is_some_and(|(n, v)| !n.is_empty() && !v.is_empty())), "{pins:?}");
        for needed in ["oss2", "tablestore", "aliyun-fc2", "aliyun-python-sdk-core", "aliyun-log-python-sdk", "crcmod", "requests"] {
            assert!(pins.iter().any(|p| p.starts_with(&format!("{needed}=="))), "{needed} is not pinned");
        }
        // A Python 2 backport that would shadow the standard library's enum must never come in.
        assert!(!pins.iter().any(|p| p.to_lowercase().starts_with("enum34")));
    }

    #[test]
    fn the_node_lock_pins_what_the_package_lists() {
        let lock: serde_json::Value = serde_json::from_str(NODE_LOCK).unwrap();
        for pin in node_pins().unwrap() {
            let (name, version) = pin.rsplit_once('@').unwrap();
            let entry = &lock["packages"][format!("node_modules/{name}")];
            assert_eq!(entry["version"].as_str(), Some(version), "{name}");
            assert!(entry["integrity"].as_str().is_some_and(|i| i.starts_with("sha512-")), "{name} has no integrity hash");
        }
    }

    #[test]
    fn the_set_name_follows_the_pins_and_the_interpreter() {
        let a = set_name("3.11");
        assert!(a.starts_with("v1-") && a.len() == 15, "{a}");
        assert_eq!(a, set_name("3.11"));
        assert_ne!(a, set_name("3.12"));
    }
}
