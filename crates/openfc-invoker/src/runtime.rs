//! Runtimes: one table, [`RUNTIMES`], says for every runtime name what runs in the instance, how openfc talks
//! to it, who prints FC's log markers, and what it adds to the environment (runtimes.md §2.5). Adding a
//! language is adding an entry (and, when it needs one, a shim folder under `runtimes/`).
//!
//! Two ways in (runtimes.md §1): the custom-runtime HTTP contract on `caPort` (custom runtimes, and openfc's
//! Python and Node.js shims), and the Runtime API 2020-11-11 that openfc serves inside the instance
//! (`runtime_api`: go1's SDK in the user's binary, and openfc's PHP shim). Shims are embedded in this binary
//! and written once to a runtime directory that instances see read-only at `/var/fc/runtime`.

use std::path::{Path, PathBuf};

use crate::{FunctionSpec, InvokeError};

pub const RUNTIME_MOUNT: &str = "/var/fc/runtime";
/// Where a Runtime-API runtime finds openfc (`FC_RUNTIME_API`): FC's own address (runtimes.md §0), on the
/// instance's private loopback.
pub const RUNTIME_API_ADDR: std::net::SocketAddrV4 = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 19001);
/// Where code-runtime instances see the runtime built-ins directory (`--builtins-dir`, filled by `openfc runtimes
/// install`): the modules FC's Python and Node.js runtimes ship built in. Bound read-only, nosuid, nodev in every
/// Python, Node.js and custom-runtime instance, pre-started ones included (it is the same for every function); the
/// shims look for the current set beneath it (`BUILTINS_SET`) when the function starts, so a set installed while
/// openfc runs is seen by the instances started after it.
pub const BUILTINS_MOUNT: &str = "/var/fc/runtime/builtins";
/// The name of the current set in the built-ins directory: a symlink to the installed copy (`v1-<id>`), which the
/// Python shim puts on `sys.path` (`python/`) and the Node.js shim on `NODE_PATH` (`nodejs/node_modules`).
pub const BUILTINS_SET: &str = "v1";
const PYTHON_SHIM_PATH: &str = "/var/fc/runtime/python/bootstrap.py";
const PYTHON_SHIM_PYC: &str = "/var/fc/runtime/python/bootstrap.pyc";

/// How openfc talks to the runtime inside an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The custom-runtime HTTP contract (fc-api.md §8.1): the runtime listens on `caPort`, openfc connects in.
    Http,
    /// The Runtime API 2020-11-11 (runtimes.md §3.2): openfc listens at [`RUNTIME_API_ADDR`] inside the
    /// instance and the runtime long-polls `/next`.
    RuntimeApi,
}

/// Who prints `FC Invoke Start/End RequestId: ...` (the bounds of `X-Fc-Log-Result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markers {
    /// openfc, around the request (custom runtimes know nothing of them).
    Openfc,
    /// The runtime: openfc's shims, and the go1 SDK inside the user's binary.
    Runtime,
}

/// An interpreter openfc runs shims with: found by absolute path, configurable (`--python`, `--node`,
/// `--php`), named in the error when missing with the Debian package that provides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpreter {
    Python,
    Node,
    Php,
    Java,
}

impl Interpreter {
    pub const ALL: [Interpreter; 4] = [Interpreter::Python, Interpreter::Node, Interpreter::Php, Interpreter::Java];

    pub fn name(self) -> &'static str {
        match self {
            Interpreter::Python => "python",
            Interpreter::Node => "node",
            Interpreter::Php => "php",
            Interpreter::Java => "java",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Interpreter::Python => "a Python 3 interpreter",
            Interpreter::Node => "a Node.js interpreter",
            Interpreter::Php => "a PHP interpreter",
            Interpreter::Java => "a Java runtime",
        }
    }

    /// The Debian package that installs the default interpreter.
    pub fn debian_package(self) -> &'static str {
        match self {
            Interpreter::Python => "python3",
            Interpreter::Node => "nodejs",
            Interpreter::Php => "php8.2-cli",
            // The JDK, not only the JRE: openfc builds its Java shim with its javac.
            Interpreter::Java => "openjdk-17-jdk-headless",
        }
    }
}

/// What the instance runs.
#[derive(Debug, Clone, Copy)]
pub enum Program {
    /// The function's own server: `/code/bootstrap`, or `customRuntimeConfig`'s command and args.
    Custom,
    /// The function's own executable, `/code/<handler>` (go1: the SDK is linked into it).
    Handler,
    /// An openfc shim under an interpreter: `<interpreter> <args...>`.
    Shim { interpreter: Interpreter, args: &'static [&'static str] },
    /// A container image's argv (ENTRYPOINT/CMD and the function's command/args, `ContainerPlan`).
    Image,
}

/// One entry of the runtime table.
#[derive(Debug)]
pub struct Runtime {
    /// The `runtime` values of functions this entry runs.
    pub names: &'static [&'static str],
    pub program: Program,
    pub protocol: Protocol,
    pub markers: Markers,
    /// Requests one instance serves at once, whatever `instanceConcurrency` says (`None`: as it says).
    pub max_concurrency: Option<u32>,
    /// Environment the platform sets for this runtime (over the function's own variables).
    pub env: &'static [(&'static str, &'static str)],
    /// Environment defaults (the function's own variables win).
    pub env_defaults: &'static [(&'static str, &'static str)],
}

/// Every runtime openfc runs. FC's other names (dotnetcore) are refused by [`lookup`] with the list.
pub static RUNTIMES: &[Runtime] = &[
    Runtime {
        names: &["custom-container"],
        program: Program::Image,
        protocol: Protocol::Http,
        markers: Markers::Openfc,
        max_concurrency: None,
        env: &[],
        env_defaults: &[],
    },
    Runtime {
        names: &["custom", "custom.debian10", "custom.debian11"],
        program: Program::Custom,
        protocol: Protocol::Http,
        markers: Markers::Openfc,
        max_concurrency: None,
        env: &[],
        env_defaults: &[],
    },
    Runtime {
        names: &["python3", "python3.9", "python3.10", "python3.12"],
        // `-u`: prints and the shim's markers reach the log in order. The script is chosen in `command` (the
        // precompiled .pyc when there is one).
        program: Program::Shim { interpreter: Interpreter::Python, args: &["-u"] },
        protocol: Protocol::Http,
        markers: Markers::Runtime,
        max_concurrency: None,
        env: &[],
        // PYTHONPATH and NODE_PATH are defaults of every instance (`instance::env_vec`): custom runtimes written
        // in those languages rely on them too.
        env_defaults: &[],
    },
    Runtime {
        names: &["nodejs12", "nodejs14", "nodejs16", "nodejs18", "nodejs20"],
        program: Program::Shim { interpreter: Interpreter::Node, args: &["/var/fc/runtime/nodejs/bootstrap.js"] },
        protocol: Protocol::Http,
        markers: Markers::Runtime,
        max_concurrency: None,
        env: &[],
        env_defaults: &[],
    },
    Runtime {
        names: &["go1"],
        program: Program::Handler,
        protocol: Protocol::RuntimeApi,
        // The SDK prints them (runtimes.md §3.5 point 4).
        markers: Markers::Runtime,
        // The SDK takes as many invocations as it has `/next` requests out (runtimes.md §3.4).
        max_concurrency: None,
        env: &[("FC_RUNTIME", "go1")],
        env_defaults: &[],
    },
    Runtime {
        names: &["php7.2"],
        // `variables_order=EGPCS`: Debian's php.ini leaves `$_ENV` empty, FC code reads it (runtimes.md §5.2).
        // The shim sets memory_limit and include_path itself.
        program: Program::Shim {
            interpreter: Interpreter::Php,
            args: &["-d", "variables_order=EGPCS", "-d", "enable_post_data_reading=1", "/var/fc/runtime/php7.2/bootstrap.php"],
        },
        protocol: Protocol::RuntimeApi,
        markers: Markers::Runtime,
        // The shim serves one request at a time (runtimes.md §5.2: FC's PHP concurrency is unconfirmed).
        max_concurrency: Some(1),
        env: &[("FC_SERVER_PATH", "/var/fc/runtime/php7.2"), ("FC_PHP_LIB_PATH", "/var/fc/runtime/php7.2/builtIn")],
        env_defaults: &[
            ("PHP_INI_SCAN_DIR", "/code/extension:/etc/php/8.2/cli/conf.d"),
            ("LD_LIBRARY_PATH", "/code:/code/lib:/usr/local/lib"),
        ],
    },
    JAVA8,
    JAVA11,
];

/// java8 and java11 (runtimes.md §4) both run on Debian's OpenJDK 17 under openfc's Java shim (custom-runtime
/// HTTP contract on caPort, multithreaded); they differ only in `FC_SERVER_PATH`. The JVM options are sized
/// from `memorySize` in [`command`] ([`java_options`]).
const fn java_entry(names: &'static [&'static str], env: &'static [(&'static str, &'static str)]) -> Runtime {
    Runtime {
        names,
        program: Program::Shim { interpreter: Interpreter::Java, args: &[] },
        protocol: Protocol::Http,
        markers: Markers::Runtime,
        max_concurrency: None,
        env,
        env_defaults: &[("LD_LIBRARY_PATH", "/code:/code/lib")],
    }
}
const JAVA8: Runtime = java_entry(&["java8"], &[("FC_SERVER_PATH", "/var/fc/runtime/java8")]);
const JAVA11: Runtime = java_entry(&["java11"], &[("FC_SERVER_PATH", "/var/fc/runtime/java11")]);

/// Shim files, per folder of `runtimes/` (one folder per language), and the directory of the runtime mount
/// they are installed in.
const SHIMS: &[(&str, &[(&str, &str)])] = &[
    ("python", &[("bootstrap.py", include_str!("../runtimes/python/bootstrap.py"))]),
    ("nodejs", &[("bootstrap.js", include_str!("../runtimes/nodejs/bootstrap.js"))]),
    (
        "php7.2",
        &[
            ("bootstrap.php", include_str!("../runtimes/php/bootstrap.php")),
            ("runtime.php", include_str!("../runtimes/php/runtime.php")),
            ("logger.php", include_str!("../runtimes/php/logger.php")),
            ("RingCentral/Psr7/Response.php", include_str!("../runtimes/php/RingCentral/Psr7/Response.php")),
        ],
    ),
    ("java", JAVA_SOURCES),
];

/// Interpreters per runtime family, resolved once at start-up (absolute paths: no PATH lookups, no shims).
#[derive(Debug, Clone)]
pub struct Interpreters {
    pub python: PathBuf,
    pub node: PathBuf,
    pub php: PathBuf,
    pub java: PathBuf,
}

impl Default for Interpreters {
    fn default() -> Self {
        Interpreters {
            python: PathBuf::from("/usr/bin/python3"),
            node: PathBuf::from("/usr/bin/node"),
            php: PathBuf::from("/usr/bin/php8.2"),
            java: PathBuf::from("/usr/lib/jvm/java-17-openjdk-amd64/bin/java"),
        }
    }
}

impl Interpreters {
    pub fn path(&self, which: Interpreter) -> &Path {
        match which {
            Interpreter::Python => &self.python,
            Interpreter::Node => &self.node,
            Interpreter::Php => &self.php,
            Interpreter::Java => &self.java,
        }
    }

    /// For `/health`: each interpreter's path and whether it is there.
    pub fn describe(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for i in Interpreter::ALL {
            let p = self.path(i);
            out.insert(i.name().into(), serde_json::json!({"path": p.display().to_string(), "found": is_executable(p)}));
        }
        serde_json::Value::Object(out)
    }
}

pub(crate) fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The table entry of `runtime`, or the error naming it and what openfc runs instead.
pub fn lookup(runtime: &str) -> Result<&'static Runtime, InvokeError> {
    RUNTIMES.iter().find(|r| r.names.contains(&runtime)).ok_or_else(|| {
        let all: Vec<&str> = RUNTIMES.iter().flat_map(|r| r.names.iter().copied()).collect();
        let advice = instead(runtime).map_or_else(String::new, |a| format!("; {a}"));
        InvokeError::UnsupportedRuntime(format!(
            "runtime '{runtime}' cannot run on openfc{advice}; supported runtimes: {}",
            all.join(", ")
        ))
    })
}

/// What to move an FC runtime openfc does not run to (UpdateFunction with the new `runtime`).
fn instead(runtime: &str) -> Option<&'static str> {
    Some(match runtime {
        "python2.7" => "Python 2 is not installed: port the code and update the function to python3.9 or later",
        "nodejs4.4" | "nodejs6" | "nodejs8" | "nodejs10" => {
            "update the function to nodejs12 or later (the same handler signatures; check the Node.js changes \
             your code relies on)"
        }
        r if r.starts_with("dotnetcore") => {
            "no .NET runtime is installed: run it as a custom-container function (an image with the .NET runtime) \
             or as custom.debian10 with a self-contained build whose bootstrap starts your server"
        }
        _ => return None,
    })
}

/// Refuses, naming it, a runtime openfc cannot run, or whose interpreter is not installed (checked each
/// time: a stat; installing the package later needs no restart).
pub fn check(runtime: &str, interp: &Interpreters) -> Result<&'static Runtime, InvokeError> {
    let rt = lookup(runtime)?;
    if let Program::Shim { interpreter, .. } = rt.program {
        let path = interp.path(interpreter);
        if !is_executable(path) {
            return Err(InvokeError::UnsupportedRuntime(format!(
                "runtime '{runtime}' needs {}: {} is missing; install Debian package {} (or set --{})",
                interpreter.describe(),
                path.display(),
                interpreter.debian_package(),
                interpreter.name()
            )));
        }
    }
    Ok(rt)
}

/// How to start one instance of a function.
pub struct Launch {
    pub runtime: &'static Runtime,
    pub argv: Vec<String>,
    /// Requests one instance serves at once.
    pub concurrency: u32,
}

/// The command line of a pre-started runtime of `interpreter`: its shim, with no function yet (`prestart`); a
/// JVM's for the memory size its heap is sized for. `None` for the runtimes that cannot be pre-started.
pub fn prestart_argv(interpreter: Interpreter, memory_mb: Option<u64>, interp: &Interpreters, python_bytecode: bool) -> Option<Vec<String>> {
    let runtime = RUNTIMES.iter().find(|r| matches!(r.program, Program::Shim { interpreter: i, .. } if i == interpreter))?;
    let Program::Shim { args, .. } = runtime.program else { return None };
    let mut argv = vec![interp.path(interpreter).display().to_string()];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    match interpreter {
        Interpreter::Python => argv.push(if python_bytecode { PYTHON_SHIM_PYC } else { PYTHON_SHIM_PATH }.to_owned()),
        Interpreter::Node | Interpreter::Php => {}
        // The JVM computes java.library.path from LD_LIBRARY_PATH, and user.dir from its cwd, at its start,
        // before the function exists: given as a fresh JVM has them (the java entries' LD_LIBRARY_PATH default,
        // cwd /code). user.dir makes absolute and NIO paths resolve in /code; java.io's relative names still
        // resolve against the process's cwd, "/" (Java has no chdir).
        Interpreter::Java => java_tail(&mut argv, memory_mb?, Some(JAVA_PRESTART_LIBRARY_PATH)),
    }
    Some(argv)
}

/// `java.library.path` of a pre-started JVM: the Java entries' `LD_LIBRARY_PATH` default, then the JDK's own
/// default on Linux.
const JAVA_PRESTART_LIBRARY_PATH: &str = "/code:/code/lib:/usr/java/packages/lib:/usr/lib64:/lib64:/lib:/usr/lib";

/// The JVM's options, class path and main class after `java`.
fn java_tail(argv: &mut Vec<String>, memory_mb: u64, library_path: Option<&str>) {
    argv.extend(java_options(memory_mb));
    if let Some(p) = library_path {
        argv.push(format!("-Djava.library.path={p}"));
        argv.push("-Duser.dir=/code".to_owned());
    }
    argv.push("-cp".to_owned());
    argv.push(std::iter::once(JAVA_CLASSES).chain(JACKSON_JARS).collect::<Vec<_>>().join(":"));
    argv.push("openfc.runtime.Bootstrap".to_owned());
}

/// The command line of a function's runtime process.
/// `python_bytecode`: the Python shim has been compiled for `interp.python` (see [`compile_python_shim`]).
pub fn command(spec: &FunctionSpec, interp: &Interpreters, python_bytecode: bool) -> Result<Launch, InvokeError> {
    let runtime = check(&spec.runtime, interp)?;
    let argv = match runtime.program {
        Program::Custom => {
            let mut argv = if spec.custom_command.is_empty() { vec!["/code/bootstrap".to_owned()] } else { spec.custom_command.clone() };
            argv.extend(spec.custom_args.iter().cloned());
            argv
        }
        Program::Handler => vec![format!("/code/{}", handler_path(&spec.handler)?)],
        Program::Image => match &spec.container {
            Some(plan) => plan.argv.clone(),
            None => return Err(InvokeError::internal("a custom-container function without its image")),
        },
        Program::Shim { interpreter, args } => {
            let mut argv = vec![interp.path(interpreter).display().to_string()];
            argv.extend(args.iter().map(|a| (*a).to_owned()));
            if interpreter == Interpreter::Python {
                argv.push(if python_bytecode { PYTHON_SHIM_PYC } else { PYTHON_SHIM_PATH }.to_owned());
            }
            if interpreter == Interpreter::Java {
                java_tail(&mut argv, spec.memory_mb, None);
            }
            argv
        }
    };
    let concurrency = spec.instance_concurrency.max(1).min(runtime.max_concurrency.unwrap_or(u32::MAX));
    Ok(Launch { runtime, argv, concurrency })
}

/// A go1 handler names an executable inside the package: a relative path that stays inside `/code`.
pub fn handler_path(handler: &str) -> Result<&str, InvokeError> {
    let bad = handler.is_empty()
        || handler.starts_with('/')
        || handler.split('/').any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(InvokeError::NotStarted(format!(
            "handler '{handler}' must name the executable in the code package (for example 'main')"
        )));
    }
    Ok(handler)
}

/// Makes `/code/<handler>` executable in the unpacked package (runtimes.md §3.1: zips made on Windows lose the
/// exec bit; FC's reaction is unconfirmed, openfc repairs it). The package directory is only ever read by
/// instances, so the repair is done once, on the host copy; a missing file is left to fail at exec.
pub fn ensure_executable(code_dir: &Path, handler: &str) -> Result<(), InvokeError> {
    use std::os::unix::fs::PermissionsExt;
    let path = code_dir.join(handler_path(handler)?);
    let Ok(meta) = std::fs::symlink_metadata(&path) else { return Ok(()) };
    if meta.is_file() && meta.permissions().mode() & 0o111 != 0o111 {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| InvokeError::internal(format!("making {handler} executable: {e}")))?;
    }
    Ok(())
}

/// The bind that shows the built-ins directory at [`BUILTINS_MOUNT`] (created empty when missing, so a set installed
/// later appears in it); `None` when none is configured or it cannot be created (instances then run without it, and
/// the shims name `openfc runtimes install` when user code imports a built-in).
pub fn builtins_bind(dir: Option<&Path>) -> Option<(PathBuf, PathBuf)> {
    let dir = dir?;
    if !dir.is_dir() {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::create_dir_all(dir).and_then(|_| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))) {
            tracing::warn!(dir = %dir.display(), error = %e, "the runtime built-ins directory cannot be created; instances run without it");
            return None;
        }
    }
    Some((dir.to_path_buf(), PathBuf::from(BUILTINS_MOUNT)))
}

/// Writes the shims into `dir` (world-readable), replacing older copies.
pub fn install_shims(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // The mount point of the built-ins directory, inside the read-only runtime mount.
    std::fs::create_dir_all(dir.join("builtins"))?;
    std::fs::set_permissions(dir.join("builtins"), std::fs::Permissions::from_mode(0o755))?;
    for (sub, files) in SHIMS {
        let d = dir.join(sub);
        for (file, text) in *files {
            let path = d.join(file);
            let parent = path.parent().unwrap_or(&d);
            std::fs::create_dir_all(parent)?;
            std::fs::write(&path, text)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        }
        for entry in crate::package::walk_dirs(&d)? {
            std::fs::set_permissions(entry, std::fs::Permissions::from_mode(0o755))?;
        }
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

pub use crate::java::{build_java_shim, java_options};
use crate::java::{JACKSON_JARS, JAVA_CLASSES, JAVA_SOURCES};

#[cfg(test)]
#[path = "runtime_tests.rs"]
mod tests;
