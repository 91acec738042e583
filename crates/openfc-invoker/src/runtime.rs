//! Runtimes: what to exec for a function. Every runtime speaks the custom-runtime HTTP contract (spec §8.1)
//! inside its instance; Python and Node.js functions run under openfc's shims, embedded in this binary and
//! written once to a runtime directory that instances see read-only at `/var/fc/runtime`.

use std::path::{Path, PathBuf};

use crate::{FunctionSpec, InvokeError};

pub const RUNTIME_MOUNT: &str = "/var/fc/runtime";
const PYTHON_SHIM_PATH: &str = "/var/fc/runtime/python/bootstrap.py";
const PYTHON_SHIM_PYC: &str = "/var/fc/runtime/python/bootstrap.pyc";
const PYTHON_SHIM: &str = include_str!("../runtimes/python/bootstrap.py");
const NODE_SHIM: &str = include_str!("../runtimes/nodejs/bootstrap.js");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// The function's own HTTP server (`/code/bootstrap` or `customRuntimeConfig`).
    Custom,
    /// An openfc shim that prints `FC Invoke Start/End` markers itself.
    Shim,
}

/// Interpreters per runtime family, resolved once at start-up (absolute paths: no PATH lookups, no shims).
#[derive(Debug, Clone)]
pub struct Interpreters {
    pub python: PathBuf,
    pub node: PathBuf,
}

impl Default for Interpreters {
    fn default() -> Self {
        Interpreters { python: PathBuf::from("/usr/bin/python3"), node: PathBuf::from("/usr/bin/node") }
    }
}

const PYTHON: &[&str] = &["python3", "python3.9", "python3.10", "python3.12"];
const NODE: &[&str] = &["nodejs12", "nodejs14", "nodejs16", "nodejs18", "nodejs20"];
const CUSTOM: &[&str] = &["custom", "custom.debian10", "custom.debian11"];

/// Refuses, naming it, a runtime openfc cannot run.
pub fn check_supported(runtime: &str) -> Result<(), InvokeError> {
    if CUSTOM.contains(&runtime) || PYTHON.contains(&runtime) || NODE.contains(&runtime) {
        return Ok(());
    }
    Err(unsupported(runtime))
}

fn unsupported(runtime: &str) -> InvokeError {
    InvokeError::UnsupportedRuntime(format!(
        "runtime '{runtime}' cannot run on openfc; supported runtimes: {}, {}, {}",
        CUSTOM.join(", "),
        PYTHON.join(", "),
        NODE.join(", ")
    ))
}

/// The command line of a function's runtime process.
/// `python_bytecode`: the Python shim has been compiled for `interp.python` (see [`compile_python_shim`]).
pub fn command(spec: &FunctionSpec, interp: &Interpreters, python_bytecode: bool) -> Result<(Vec<String>, RuntimeKind), InvokeError> {
    let rt = spec.runtime.as_str();
    if CUSTOM.contains(&rt) {
        let mut argv = if spec.custom_command.is_empty() { vec!["/code/bootstrap".to_owned()] } else { spec.custom_command.clone() };
        argv.extend(spec.custom_args.iter().cloned());
        return Ok((argv, RuntimeKind::Custom));
    }
    if PYTHON.contains(&rt) {
        let shim = if python_bytecode { PYTHON_SHIM_PYC } else { PYTHON_SHIM_PATH }.to_owned();
        return Ok((vec![interp.python.display().to_string(), "-u".into(), shim], RuntimeKind::Shim));
    }
    if NODE.contains(&rt) {
        let shim = format!("{RUNTIME_MOUNT}/nodejs/bootstrap.js");
        return Ok((vec![interp.node.display().to_string(), shim], RuntimeKind::Shim));
    }
    Err(unsupported(rt))
}

/// Writes the shims into `dir` (world-readable), replacing older copies.
pub fn install_shims(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for (sub, file, text) in [("python", "bootstrap.py", PYTHON_SHIM), ("nodejs", "bootstrap.js", NODE_SHIM)] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(file), text)?;
        std::fs::set_permissions(d.join(file), std::fs::Permissions::from_mode(0o644))?;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
}

/// Compiles the Python shim to `bootstrap.pyc` with `python` (the interpreter instances run), so a cold start
/// does not compile 800 lines (5–6 ms measured) before its runtime can listen. Blocking: run it off the
/// async threads. False (and no .pyc left) when it could not.
pub fn compile_python_shim(dir: &Path, python: &Path) -> bool {
    let (src, pyc) = (dir.join("python/bootstrap.py"), dir.join("python/bootstrap.pyc"));
    let _ = std::fs::remove_file(&pyc);
    let script = "import py_compile, sys\n\
        py_compile.compile(sys.argv[1], cfile=sys.argv[2], dfile=sys.argv[3], doraise=True,\n\
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)";
    let ok = std::process::Command::new(python)
        .args(["-I", "-c", script])
        .arg(&src)
        .arg(&pyc)
        .arg(PYTHON_SHIM_PATH)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        use std::os::unix::fs::PermissionsExt;
        return std::fs::set_permissions(&pyc, std::fs::Permissions::from_mode(0o644)).is_ok();
    }
    let _ = std::fs::remove_file(&pyc);
    false
}
