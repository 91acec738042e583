//! Instance output: every line a runtime writes, kept in a bounded ring per instance, from which an
//! invocation's log (`X-Fc-Log-Result`) is cut.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Notify;

/// Longest line kept whole: longer output (a function writing without newlines) is cut into pieces of at
/// most this many bytes, so what openfc holds per instance stream stays bounded whatever the function writes.
pub const MAX_LINE: usize = 16 * 1024;

/// Reads `stream` to its end, handing each line (without its `\n` or `\r\n`) to `on_line`: bytes that
/// are not UTF-8 are replaced, lines over `max_line` bytes are split, and nothing stops the draining short
/// of EOF or a read error (a runtime whose output is no longer read would block on its next write).
pub async fn drain_lines<R: AsyncRead + Unpin>(mut stream: R, max_line: usize, mut on_line: impl FnMut(String)) {
    let mut pending: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut rest = &chunk[..n];
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            pending.extend_from_slice(&rest[..pos]);
            emit(&mut pending, &mut on_line);
            rest = &rest[pos + 1..];
        }
        pending.extend_from_slice(rest);
        while pending.len() >= max_line {
            // Cut at a character boundary when one is near, so a split line still decodes cleanly.
            let mut cut = max_line;
            while cut < pending.len() && cut > max_line.saturating_sub(4) && cut > 1 && (pending[cut] & 0xC0) == 0x80 {
                cut -= 1;
            }
            let tail = pending.split_off(cut);
            emit(&mut pending, &mut on_line);
            pending = tail;
        }
    }
    if !pending.is_empty() {
        emit(&mut pending, &mut on_line);
    }
}

fn emit(pending: &mut Vec<u8>, on_line: &mut impl FnMut(String)) {
    if pending.last() == Some(&b'\r') {
        pending.pop();
    }
    on_line(String::from_utf8_lossy(pending).into_owned());
    pending.clear();
}

pub struct LogRing {
    inner: Mutex<Ring>,
    notify: Notify,
}

struct Ring {
    lines: VecDeque<String>,
    bytes: usize,
    cap: usize,
}

impl LogRing {
    pub fn new(cap: usize) -> Self {
        LogRing { inner: Mutex::new(Ring { lines: VecDeque::new(), bytes: 0, cap }), notify: Notify::new() }
    }

    pub fn push(&self, line: String) {
        let mut r = self.inner.lock().expect("log ring");
        r.bytes += line.len() + 1;
        r.lines.push_back(line);
        while r.bytes > r.cap {
            match r.lines.pop_front() {
                Some(old) => r.bytes -= old.len() + 1,
                None => break,
            }
        }
        drop(r);
        self.notify.notify_waiters();
    }

    /// The last `n` lines.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let r = self.inner.lock().expect("log ring");
        r.lines.iter().skip(r.lines.len().saturating_sub(n)).cloned().collect()
    }

    fn contains(&self, needle: &str) -> bool {
        self.inner.lock().expect("log ring").lines.iter().rev().take(10_000).any(|l| l.contains(needle))
    }

    /// Waits (bounded) until a line containing `needle` has been read from the runtime.
    pub async fn wait_for(&self, needle: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.notify.notified();
            if self.contains(needle) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    /// Waits until no line has arrived for `quiet`, or at most `limit`.
    pub async fn wait_quiet(&self, quiet: Duration, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.notify.notified();
            let until = (tokio::time::Instant::now() + quiet).min(deadline);
            if tokio::time::timeout_at(until, notified).await.is_err() || tokio::time::Instant::now() >= deadline {
                return;
            }
        }
    }

    /// The lines from `start` to `end` (the last such segment), inclusive.
    pub fn segment(&self, start: &str, end: &str) -> Vec<String> {
        let r = self.inner.lock().expect("log ring");
        let lines: Vec<&String> = r.lines.iter().collect();
        let from = lines.iter().rposition(|l| l.contains(start)).unwrap_or(lines.len());
        let mut out = Vec::new();
        for l in &lines[from..] {
            out.push((*l).clone());
            if l.contains(end) {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(input: &[u8], max: usize) -> Vec<String> {
        let mut out = Vec::new();
        drain_lines(input, max, |l| out.push(l)).await;
        out
    }

    #[tokio::test]
    async fn lines_are_split_bounded_and_decoded_lossily() {
        assert_eq!(lines_of(b"a\nb\r\n\nlast", 100).await, ["a", "b", "", "last"]);
        let long = vec![b'x'; 250];
        let parts = lines_of(&long, 100).await;
        assert_eq!(parts.iter().map(String::len).collect::<Vec<_>>(), [100, 100, 50]);
        assert_eq!(lines_of(b"ok \xff\xfe bytes\nnext\n", 100).await, ["ok \u{fffd}\u{fffd} bytes", "next"]);
        // A multi-byte character is not cut in half at the split.
        let mut text = vec![b'a'; 99];
        text.extend_from_slice("é".as_bytes());
        let parts = lines_of(&text, 100).await;
        assert_eq!(parts, ["a".repeat(99), "é".to_owned()]);
        // Exactly one full piece, then nothing pending.
        assert_eq!(lines_of(&[b'y'; 100], 100).await, ["y".repeat(100)]);
    }

    #[test]
    fn bounded_and_segmented() {
        let r = LogRing::new(128);
        r.push("FC Invoke Start RequestId: a".into());
        r.push("hello".into());
        r.push("FC Invoke End RequestId: a".into());
        r.push("other".into());
        assert_eq!(r.segment("Start RequestId: a", "End RequestId: a").len(), 3);
        for i in 0..20 {
            r.push(format!("line {i}"));
        }
        let kept = r.tail(100).len();
        assert!((10..=16).contains(&kept), "bounded by bytes: kept {kept}");
        assert_eq!(r.tail(1), ["line 19"]);
    }
}
