//! Where `openfc serve`'s log lines go: stderr, through a buffer flushed at most `FLUSH_AFTER` after a line
//! arrives. Every request writes a line, and a `write(2)` per line was ~4 % of the CPU of a warm invocation
//! (the warm benchmark's profile at concurrency 1); a thread woken per line (tracing-appender) cost more than
//! the write. Here the flusher thread is woken once per burst: when a line lands in an empty buffer.
//!
//! Warnings and errors are written at once (with everything buffered before them, so the order holds), as is
//! a buffer past `FLUSH_AT`. `flush` empties the buffer: at shutdown, after `serve` returns, and from the
//! panic hook, so nothing buffered is lost on the way out (a SIGKILL loses at most `FLUSH_AFTER` of lines).

use std::io::Write;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait in the buffer.
const FLUSH_AFTER: Duration = Duration::from_millis(50);
/// A buffer this full is written at once.
const FLUSH_AT: usize = 64 * 1024;

struct Sink {
    buf: Mutex<Vec<u8>>,
    /// Signalled when a line lands in an empty buffer.
    filled: Condvar,
    /// Held while writing out, with the spare buffer swapped in: lines keep arriving in `buf` meanwhile, and
    /// writes happen one at a time in the order their lines arrived.
    out: Mutex<Vec<u8>>,
}

fn sink() -> &'static Sink {
    static SINK: OnceLock<Sink> = OnceLock::new();
    SINK.get_or_init(|| {
        std::thread::Builder::new()
            .name("openfc-log".into())
            .spawn(flusher)
            .expect("spawning the log flusher thread");
        Sink { buf: Mutex::new(Vec::with_capacity(FLUSH_AT)), filled: Condvar::new(), out: Mutex::new(Vec::with_capacity(FLUSH_AT)) }
    })
}

fn flusher() {
    let sink = sink();
    loop {
        {
            let guard = sink.buf.lock().unwrap_or_else(|e| e.into_inner());
            let _guard = sink.filled.wait_while(guard, |b| b.is_empty()).unwrap_or_else(|e| e.into_inner());
        }
        std::thread::sleep(FLUSH_AFTER);
        flush();
    }
}

/// Writes out whatever is buffered.
pub fn flush() {
    let sink = sink();
    let mut out = sink.out.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::swap(&mut *sink.buf.lock().unwrap_or_else(|e| e.into_inner()), &mut *out);
    if !out.is_empty() {
        // Nowhere to report a failed write of the log itself.
        let _ = std::io::stderr().lock().write_all(&out);
        out.clear();
    }
}

/// The `MakeWriter` of `serve`'s subscriber.
#[derive(Clone, Copy)]
pub struct Buffered;

/// One event's writer: the formatter hands it the whole line in one `write`.
pub struct LineWriter {
    urgent: bool,
}

impl Write for LineWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let sink = sink();
        let full = {
            let mut buf = sink.buf.lock().unwrap_or_else(|e| e.into_inner());
            let was_empty = buf.is_empty();
            buf.extend_from_slice(data);
            let full = buf.len() >= FLUSH_AT;
            if was_empty && !self.urgent && !full {
                sink.filled.notify_one();
            }
            full
        };
        if self.urgent || full {
            flush();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffered {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter { urgent: false }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LineWriter {
        // Levels order by verbosity: WARN and ERROR are the ones below INFO.
        LineWriter { urgent: *meta.level() < Level::INFO }
    }
}

/// Flushes the buffer before the panic message, so the lines leading up to it come first.
pub fn flush_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // Never wait here: the panicking thread may be the one holding a lock of the sink.
        let sink = sink();
        if let (Ok(mut out), Ok(mut buf)) = (sink.out.try_lock(), sink.buf.try_lock()) {
            let _ = std::io::stderr().lock().write_all(&out).and_then(|_| std::io::stderr().lock().write_all(&buf));
            out.clear();
            buf.clear();
        }
        previous(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_that_are_written_at_once() {
        assert!(Level::WARN < Level::INFO && Level::ERROR < Level::INFO);
        assert!(Level::DEBUG > Level::INFO && Level::TRACE > Level::INFO);
    }
}
