//! Instance output: every line a runtime writes, kept in a bounded ring per instance, from which an
//! invocation's log (`X-Fc-Log-Result`) is cut.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

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
