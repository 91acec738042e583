//! `openfc deploy DIR`: the folder zipped in memory (never past the size limit), the service created if
//! missing, the function created or updated, the request body streamed with a progress bar on stderr.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{Cursor, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Method;
use serde_json::{Map, Value, json};
use zip::write::SimpleFileOptions;

use super::client::{Call, Client, seg};
use super::output::{self, Output};
use super::{CliError, DeployArgs};

/// Bodies smaller than this go up without a progress bar (it would only flicker).
const PROGRESS_FROM: usize = 4 * 1024 * 1024;
/// Upload chunk, and progress step.
const CHUNK: usize = 256 * 1024;

/// `KEY=VALUE` of `--env`.
pub fn parse_env_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("'{text}' is not KEY=VALUE")),
    }
}

/// A `Vec` behind a cursor that refuses to grow past `max` bytes, so zipping a large folder stops as soon as
/// the package is known to be too large instead of after buffering all of it.
struct Capped {
    inner: Cursor<Vec<u8>>,
    max: u64,
    /// Set when a write was refused: the error the zip writer then reports means "too large".
    over: Rc<Cell<bool>>,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.inner.position() + buf.len() as u64 > self.max {
            self.over.set(true);
            return Err(std::io::Error::other("package size limit reached"));
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for Capped {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Zips `dir`'s contents (names relative to it, Unix modes kept, symbolic links followed: FC and openfc
/// refuse links inside packages). Errors are the user's input: usage errors.
pub fn zip_dir(dir: &Path, max: u64) -> Result<Vec<u8>, CliError> {
    let usage = |m: String| CliError::Usage(m);
    let meta = std::fs::metadata(dir).map_err(|e| usage(format!("{}: {e}", dir.display())))?;
    if !meta.is_dir() {
        return Err(usage(format!("{} is not a folder (deploy zips a folder's contents)", dir.display())));
    }
    let over = Rc::new(Cell::new(false));
    let mut zip = zip::ZipWriter::new(Capped { inner: Cursor::new(Vec::new()), max, over: over.clone() });
    let root = std::fs::canonicalize(dir).map_err(|e| usage(format!("{}: {e}", dir.display())))?;
    let result = add_dir(&mut zip, dir, "", &mut vec![root])
        .and_then(|()| zip.finish().map_err(|e| usage(format!("zipping {}: {e}", dir.display()))));
    match result {
        Ok(capped) => Ok(capped.inner.into_inner()),
        Err(_) if over.get() => Err(too_large(dir, max)),
        Err(e) => Err(e),
    }
}

fn too_large(dir: &Path, max: u64) -> CliError {
    CliError::Usage(format!(
        "{} zips to more than {} (--max-code-size); FC takes at most 100 MB in a request: make the folder smaller \
         (dependencies in a layer, data elsewhere)",
        dir.display(),
        output::size(max)
    ))
}

/// Adds `dir`'s entries under `prefix`, sorted by name so the same folder gives the same zip layout.
/// `ancestors` are the canonical folders being walked: a link back to one of them would never end.
fn add_dir(
    zip: &mut zip::ZipWriter<Capped>,
    dir: &Path,
    prefix: &str,
    ancestors: &mut Vec<PathBuf>,
) -> Result<(), CliError> {
    use std::os::unix::fs::PermissionsExt;
    let usage = |m: String| CliError::Usage(m);
    let fail = |path: &Path, e: &dyn std::fmt::Display| usage(format!("{}: {e}", path.display()));
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).map_err(|e| fail(dir, &e))?.collect::<Result<_, _>>().map_err(|e| fail(dir, &e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let file_name = entry.file_name();
        let name = file_name.to_str().ok_or_else(|| usage(format!("{}: the name is not UTF-8", path.display())))?;
        let name = format!("{prefix}{name}");
        // Follows links: the target's kind and mode.
        let meta = std::fs::metadata(&path).map_err(|e| fail(&path, &e))?;
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(meta.permissions().mode() & 0o7777)
            .large_file(meta.len() >= u32::MAX as u64);
        if meta.is_dir() {
            let canonical = std::fs::canonicalize(&path).map_err(|e| fail(&path, &e))?;
            if ancestors.contains(&canonical) {
                return Err(usage(format!("{}: a symbolic link back to a folder it is in", path.display())));
            }
            zip.add_directory(format!("{name}/"), options).map_err(|e| zip_error(&path, e))?;
            ancestors.push(canonical);
            add_dir(zip, &path, &format!("{name}/"), ancestors)?;
            ancestors.pop();
        } else if meta.is_file() {
            zip.start_file(name, options).map_err(|e| zip_error(&path, e))?;
            let mut file = std::fs::File::open(&path).map_err(|e| fail(&path, &e))?;
            std::io::copy(&mut file, zip).map_err(|e| zip_error(&path, zip::result::ZipError::Io(e)))?;
        } else {
            return Err(usage(format!("{}: neither a file nor a folder (a socket or device?)", path.display())));
        }
    }
    Ok(())
}

fn zip_error(path: &Path, e: zip::result::ZipError) -> CliError {
    CliError::Usage(format!("zipping {}: {e}", path.display()))
}

/// The function's configuration fields the flags give (the code goes in separately).
fn config_fields(args: &DeployArgs, create: bool) -> Map<String, Value> {
    let mut fields = Map::new();
    if create {
        fields.insert("functionName".into(), json!(args.function));
    }
    if let Some(r) = &args.runtime {
        fields.insert("runtime".into(), json!(r));
    }
    if let Some(h) = &args.handler {
        fields.insert("handler".into(), json!(h));
    }
    if let Some(m) = args.memory {
        fields.insert("memorySize".into(), json!(m));
    }
    if let Some(t) = args.timeout {
        fields.insert("timeout".into(), json!(t));
    }
    if !args.env.is_empty() {
        let vars: BTreeMap<&str, &str> = args.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        fields.insert("environmentVariables".into(), json!(vars));
    }
    fields
}

/// `{"code":{"zipFile":"<base64>"}, ...fields}`, with the base64 written straight into the body (no extra
/// copies of a 100 MB package).
fn request_body(zip: &[u8], fields: &Map<String, Value>) -> Bytes {
    let mut body = String::with_capacity(zip.len() / 3 * 4 + 1024);
    body.push_str(r#"{"code":{"zipFile":""#);
    STANDARD.encode_string(zip, &mut body);
    body.push_str("\"}");
    for (k, v) in fields {
        body.push(',');
        body.push_str(&Value::String(k.clone()).to_string());
        body.push(':');
        body.push_str(&v.to_string());
    }
    body.push('}');
    Bytes::from(body)
}

/// The body as a stream of chunks, advancing a progress bar on stderr as the connection takes them (hidden
/// when stderr is no terminal, and for small bodies).
fn streamed(body: Bytes) -> (reqwest::Body, ProgressBar) {
    let bar = if body.len() >= PROGRESS_FROM {
        let bar = ProgressBar::with_draw_target(Some(body.len() as u64), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("uploading {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar
    } else {
        ProgressBar::hidden()
    };
    let progress = bar.clone();
    let chunks = futures::stream::unfold(body, move |mut rest| {
        let progress = progress.clone();
        async move {
            if rest.is_empty() {
                return None;
            }
            let chunk = rest.split_to(rest.len().min(CHUNK));
            progress.inc(chunk.len() as u64);
            Some((Ok::<Bytes, std::io::Error>(chunk), rest))
        }
    });
    (reqwest::Body::wrap_stream(chunks), bar)
}

/// Whether the server says the resource is missing (`ServiceNotFound`, `FunctionNotFound`).
async fn exists(client: &Client, path: String, missing: &str) -> Result<bool, CliError> {
    let answer = client.send(Call::new(Method::GET, path)).await?;
    if answer.ok() {
        return Ok(true);
    }
    match answer.error() {
        CliError::Server { code, .. } if code == missing => Ok(false),
        other => Err(other),
    }
}

pub async fn deploy(args: DeployArgs) -> Result<(), CliError> {
    let max = args.max_code_size.saturating_mul(1024 * 1024);
    let zip = zip_dir(&args.dir, max)?;
    let client = Client::new(&args.conn)?;
    let service_path = format!("/services/{}", seg(&args.service));
    if !exists(&client, service_path.clone(), "ServiceNotFound").await? {
        let answer = client
            .send(Call::new(Method::POST, "/services".into()).json_body(&json!({"serviceName": args.service})))
            .await?;
        match answer.ok() {
            true => eprintln!("created service {}", args.service),
            // Someone else created it meanwhile: what was wanted.
            false => match answer.error() {
                CliError::Server { code, .. } if code == "ServiceAlreadyExists" => {}
                other => return Err(other),
            },
        }
    }
    let function_path = format!("{service_path}/functions/{}", seg(&args.function));
    let create = !exists(&client, function_path.clone(), "FunctionNotFound").await?;
    if create && (args.runtime.is_none() || args.handler.is_none()) {
        return Err(CliError::Usage(format!(
            "function {}/{} does not exist yet: give --runtime and --handler to create it",
            args.service, args.function
        )));
    }
    let body = request_body(&zip, &config_fields(&args, create));
    let (method, path) =
        if create { (Method::POST, format!("{service_path}/functions")) } else { (Method::PUT, function_path) };
    let mut call = Call::new(method, path);
    // The explicit length keeps the streamed body from going chunked (some proxies refuse that).
    call.headers.push(("content-length", body.len().to_string()));
    let (stream, bar) = streamed(body);
    call.body = stream;
    let answer = client.send(call).await;
    bar.finish_and_clear();
    let answer = answer?;
    if !answer.ok() {
        return Err(answer.error());
    }
    let function = answer.json()?;
    match args.output.output {
        Output::Json => output::json(&function),
        Output::Table => output::stdout(&format!(
            "{} function {}/{}: runtime {}, handler {}, code {} (checksum {})\n",
            if create { "created" } else { "updated" },
            args.service,
            args.function,
            function["runtime"].as_str().unwrap_or("?"),
            function["handler"].as_str().unwrap_or("?"),
            output::size(zip.len() as u64),
            function["codeChecksum"].as_str().unwrap_or("?"),
        )),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.py"), "def handler(e, c): return e\n").unwrap();
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("lib/bootstrap"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(dir.path().join("lib/bootstrap"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("index.py", dir.path().join("link.py")).unwrap();
        dir
    }

    #[test]
    fn folders_zip_with_relative_names_modes_and_links_followed() {
        let dir = tree();
        let bytes = zip_dir(dir.path(), 1 << 20).unwrap();
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let names: Vec<String> = archive.file_names().map(|n| n.unwrap().into_owned()).collect();
        assert_eq!(names, ["index.py", "lib/", "lib/bootstrap", "link.py"]);
        let mut link = archive.by_name("link.py").unwrap();
        assert!(!link.is_symlink());
        let mut text = String::new();
        link.read_to_string(&mut text).unwrap();
        assert_eq!(text, "def handler(e, c): return e\n");
        drop(link);
        assert_eq!(archive.by_name("lib/bootstrap").unwrap().unix_mode().unwrap() & 0o777, 0o755);
        // openfc's own package check takes it.
        let limits = openfc_core::code::PackageLimits { max_size: 1 << 20, max_entries: 100, max_unzipped: 1 << 20 };
        let bytes = zip_dir(dir.path(), 1 << 20).unwrap();
        openfc_core::code::inspect(Bytes::from(bytes), &limits).unwrap();
    }

    #[test]
    fn oversized_folders_and_loops_are_usage_errors() {
        let dir = tree();
        let noise: Vec<u8> = (0..64 * 1024).map(|_| rand::random::<u8>()).collect(); // incompressible
        std::fs::write(dir.path().join("big.bin"), noise).unwrap();
        let err = zip_dir(dir.path(), 2048).unwrap_err();
        assert!(matches!(&err, CliError::Usage(m) if m.contains("zips to more than 2.0 KiB")), "{err}");
        std::os::unix::fs::symlink(".", dir.path().join("lib/up")).unwrap();
        std::os::unix::fs::symlink("..", dir.path().join("lib/loop")).unwrap();
        let err = zip_dir(dir.path(), 1 << 20).unwrap_err();
        assert!(matches!(&err, CliError::Usage(m) if m.contains("symbolic link back")), "{err}");
        assert_eq!(zip_dir(&dir.path().join("index.py"), 1 << 20).unwrap_err().exit_code(), 2);
        assert_eq!(zip_dir(&dir.path().join("nope"), 1 << 20).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn bodies_carry_the_code_and_only_the_given_fields() {
        let body = request_body(b"zipbytes", &Map::from_iter([("runtime".to_owned(), json!("python3.10"))]));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v, json!({"code": {"zipFile": STANDARD.encode(b"zipbytes")}, "runtime": "python3.10"}));
        let bare: Value = serde_json::from_slice(&request_body(b"z", &Map::new())).unwrap();
        assert_eq!(bare, json!({"code": {"zipFile": STANDARD.encode(b"z")}}));
        assert_eq!(parse_env_pair("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert!(parse_env_pair("=x").is_err() && parse_env_pair("novalue").is_err());
    }
}
