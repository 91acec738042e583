//! Function logs on disk: every line an instance writes, per function, in a bounded rotating file
//! (`DATA_DIR/logs/<account>/<service>/<function>.log` and one older `.log.1`), read by `openfc logs`
//! and the logs API.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Largest size of one log file before it rotates.
pub const ROTATE_BYTES: u64 = 8 * 1024 * 1024;

pub struct LogFile {
    path: PathBuf,
    file: Mutex<Option<(std::fs::File, u64)>>,
}

pub fn log_path(root: &Path, account: &str, service: &str, function: &str) -> PathBuf {
    root.join(account).join(service).join(format!("{function}.log"))
}

impl LogFile {
    pub fn new(path: PathBuf) -> Self {
        LogFile { path, file: Mutex::new(None) }
    }

    /// Appends one line `<time> <instance> <text>`; a failing disk never fails the function.
    pub fn append(&self, instance: &str, line: &str) {
        let mut guard = self.file.lock().expect("log file");
        if guard.is_none() {
            if let Some(dir) = self.path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Ok(f) = std::fs::OpenOptions::new().create(true).append(true).open(&self.path) {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                *guard = Some((f, len));
            }
        }
        let Some((file, len)) = guard.as_mut() else { return };
        let now = time::OffsetDateTime::now_utc();
        let text = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {instance} {line}\n",
            now.year(),
            now.month() as u8,
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.millisecond()
        );
        if file.write_all(text.as_bytes()).is_ok() {
            *len += text.len() as u64;
        }
        if *len > ROTATE_BYTES {
            let _ = std::fs::rename(&self.path, self.path.with_extension("log.1"));
            *guard = None;
        }
    }
}

/// The last `limit` lines of a function's log (older file first).
pub fn read_tail(path: &Path, limit: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for p in [path.with_extension("log.1"), path.to_path_buf()] {
        if let Ok(text) = std::fs::read_to_string(&p) {
            lines.extend(text.lines().map(str::to_owned));
        }
    }
    let skip = lines.len().saturating_sub(limit);
    lines.split_off(skip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_rotates_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_path(dir.path(), "1", "s", "f");
        let log = LogFile::new(path.clone());
        log.append("c-1", "hello");
        log.append("c-1", "world");
        let tail = read_tail(&path, 10);
        assert_eq!(tail.len(), 2);
        assert!(tail[1].ends_with("c-1 world"), "{tail:?}");
        let big = "x".repeat(1024);
        for _ in 0..(ROTATE_BYTES / 1024 + 10) {
            log.append("c-1", &big);
        }
        assert!(path.with_extension("log.1").exists(), "rotated");
        assert!(std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) < ROTATE_BYTES);
        assert_eq!(read_tail(&path, 3).len(), 3);
    }
}
