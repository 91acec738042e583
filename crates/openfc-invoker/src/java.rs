//! The Java runtime's shim, built from the sources embedded in the binary with the JDK's javac on first use,
//! and the JVM options sized from the function's memory.

use std::path::{Path, PathBuf};

use crate::InvokeError;
use crate::runtime::{Interpreter, is_executable};

/// The Java shim's sources (built by [`build_java_shim`] with the JDK's javac, no prebuilt classes): openfc's
/// copies of fc-java-core's interfaces (`api/`) and the shim (`shim/`).
pub(crate) const JAVA_SOURCES: &[(&str, &str)] = &[
    ("api/com/aliyun/fc/runtime/Context.java", include_str!("../runtimes/java/api/com/aliyun/fc/runtime/Context.java")),
    ("api/com/aliyun/fc/runtime/Credentials.java", include_str!("../runtimes/java/api/com/aliyun/fc/runtime/Credentials.java")),
    ("api/com/aliyun/fc/runtime/FunctionComputeLogger.java", include_str!("../runtimes/java/api/com/aliyun/fc/runtime/FunctionComputeLogger.java")),
    ("api/com/aliyun/fc/runtime/FunctionInitializer.java", include_str!("../runtimes/java/api/com/aliyun/fc/runtime/FunctionInitializer.java")),
    ("api/com/aliyun/fc/runtime/FunctionParam.java", include_str!("../runtimes/java/api/com/aliyun/fc/runtime/FunctionParam.java")),
    ("api/com/aliyun/fc/runtime/OpenTracing.java", include_str!("../runtimes/java/api/com/aliyun/fc/runtime/OpenTracing.java")),
    ("api/com/aliyun/fc/runtime/PojoRequestHandler.java", include_str!("../runtimes/java/api/com/aliyun/fc/runtime/PojoRequestHandler.java")),
    ("api/com/aliyun/fc/runtime/PreFreezeHandler.java", include_str!("../runtimes/java/api/com/aliyun/fc/runtime/PreFreezeHandler.java")),
    ("api/com/aliyun/fc/runtime/PreStopHandler.java", include_str!("../runtimes/java/api/com/aliyun/fc/runtime/PreStopHandler.java")),
    ("api/com/aliyun/fc/runtime/Service.java", include_str!("../runtimes/java/api/com/aliyun/fc/runtime/Service.java")),
    ("api/com/aliyun/fc/runtime/StreamRequestHandler.java", include_str!("../runtimes/java/api/com/aliyun/fc/runtime/StreamRequestHandler.java")),
    ("shim/openfc/runtime/Bootstrap.java", include_str!("../runtimes/java/shim/openfc/runtime/Bootstrap.java")),
    ("shim/openfc/runtime/FcContext.java", include_str!("../runtimes/java/shim/openfc/runtime/FcContext.java")),
    ("shim/openfc/runtime/Json.java", include_str!("../runtimes/java/shim/openfc/runtime/Json.java")),
    ("shim/openfc/runtime/Pojo.java", include_str!("../runtimes/java/shim/openfc/runtime/Pojo.java")),
    ("shim/openfc/runtime/Prestart.java", include_str!("../runtimes/java/shim/openfc/runtime/Prestart.java")),
];

/// Debian's Jackson (libjackson2-databind-java and its dependencies), for PojoRequestHandler's JSON.
pub(crate) const JACKSON_JARS: [&str; 3] =
    ["/usr/share/java/jackson-databind.jar", "/usr/share/java/jackson-core.jar", "/usr/share/java/jackson-annotations.jar"];

pub(crate) const JAVA_CLASSES: &str = "/var/fc/runtime/java/classes";

/// The JVM's options for a function of `memory_mb` (runtimes.md §4.4): FC's encoding and property flags,
/// TCP_NODELAY for the shim's HTTP server, serial GC, `-Xms` 30 %, and `-Xmx` 90 % of the memory minus an explicit
/// budget for everything that is not heap (metaspace, code cache, direct buffers, thread stacks all capped), so
/// that a function that allocates too much
/// meets a Java `OutOfMemoryError` rather than the cgroup's kill. The sandbox shows no cgroup files, so the JVM
/// would size itself from the host: the processor count is given too.
pub fn java_options(memory_mb: u64) -> Vec<String> {
    let m = memory_mb.max(64);
    let metaspace = (m / 8).clamp(32, 256);
    let code_cache = (m / 16).clamp(16, 240);
    let direct = (m / 16).clamp(8, 256);
    let heap = (m * 9 / 10).saturating_sub(metaspace + code_cache + direct).max(16);
    let initial = (m * 3 / 10).min(heap);
    let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let cpus = (m / 1024).clamp(1, host_cpus.max(1));
    [
        format!("-Xmx{heap}m"),
        format!("-Xms{initial}m"),
        format!("-XX:MaxMetaspaceSize={metaspace}m"),
        format!("-XX:ReservedCodeCacheSize={code_cache}m"),
        format!("-XX:MaxDirectMemorySize={direct}m"),
        "-Xss512k".to_owned(),
        format!("-XX:ActiveProcessorCount={cpus}"),
        "-XX:+UseSerialGC".to_owned(),
        "-XX:-UsePerfData".to_owned(),
        "-Xshare:auto".to_owned(),
        // The JDK's HTTP server writes a reply's head and body apart: without TCP_NODELAY, Nagle's algorithm and
        // the client's delayed ACK held every warm invocation ~40 ms (measured: p50 48 ms vs 1.3 ms for PHP).
        "-Dsun.net.httpserver.nodelay=true".to_owned(),
        "-Dfile.encoding=UTF-8".to_owned(),
        "-Dsun.jnu.encoding=UTF-8".to_owned(),
        "-Dfc.func.code.path=/code".to_owned(),
        "-Djava.security.egd=file:/dev/./urandom".to_owned(),
    ]
    .into()
}

/// Builds the Java shim (`<dir>/java/classes`) from the sources [`install_shims`] wrote, with the `javac` beside
/// `java`, unless a build of these very sources by that JDK is there (a stamp). Done on the first Java start of
/// a data directory rather than at every openfc start (javac takes 2–3 s of CPU), serialised by a lock.
/// Blocking: run it off the async threads.
pub fn build_java_shim(dir: &Path, java: &Path, runtime: &str) -> Result<(), InvokeError> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let javac = java.with_file_name("javac");
    let classes = dir.join("java/classes");
    let mut key = javac.display().to_string();
    for (name, text) in JAVA_SOURCES {
        key.push_str(name);
        key.push_str(text);
    }
    let stamp = format!("{:016x}\n", openfc_core::code::crc64(key.as_bytes()));
    if std::fs::read_to_string(classes.join(".stamp")).is_ok_and(|s| s == stamp) {
        return Ok(());
    }
    if !is_executable(&javac) {
        return Err(InvokeError::UnsupportedRuntime(format!(
            "runtime '{runtime}' needs the JDK's javac to build openfc's Java shim: {} is missing; install Debian package {} (or set --java)",
            javac.display(),
            Interpreter::Java.debian_package()
        )));
    }
    if let Some(missing) = JACKSON_JARS.iter().find(|j| !Path::new(j).is_file()) {
        return Err(InvokeError::UnsupportedRuntime(format!(
            "runtime '{runtime}' needs Jackson for openfc's Java shim: {missing} is missing; install Debian package libjackson2-databind-java"
        )));
    }
    let tmp = dir.join(format!("java/classes.tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let sources: Vec<PathBuf> = JAVA_SOURCES.iter().map(|(name, _)| dir.join("java").join(name)).collect();
    // `-source/-target 8`: users compile against the interface copies with `--release 8`, so they must be
    // Java 8 class files; the shim uses JDK APIs (com.sun.net.httpserver), hence not `--release`.
    let out = std::process::Command::new(&javac)
        .args(["-nowarn", "-Xlint:-options", "-source", "8", "-target", "8", "-encoding", "UTF-8", "-cp"])
        .arg(JACKSON_JARS.join(":"))
        .arg("-d")
        .arg(&tmp)
        .args(&sources)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| InvokeError::internal(format!("running {}: {e}", javac.display())))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(InvokeError::internal(format!(
            "building openfc's Java shim with {} failed: {}",
            javac.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let write = || -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(tmp.join(".stamp"), &stamp)?;
        for d in crate::package::walk_dirs(&tmp)? {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
            for e in std::fs::read_dir(&d)? {
                let e = e?;
                if e.file_type()?.is_file() {
                    std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o644))?;
                }
            }
        }
        let _ = std::fs::remove_dir_all(&classes);
        std::fs::rename(&tmp, &classes)
    };
    write().map_err(|e| InvokeError::internal(format!("installing the Java shim's classes: {e}")))
}
