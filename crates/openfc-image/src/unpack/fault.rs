//! What went wrong inside a layer, before `unpack` words it as an `ImageError` naming the layer.

use rustix::io::Errno;

use super::path::show;

#[derive(Debug)]
pub(crate) enum Fault {
    /// The layer's content is refused (a path, a link, an entry type, a read error of the tar stream):
    /// trying again gives the same answer.
    Refused(String),
    /// The host failed (disk full, I/O error, out of descriptors): another attempt may succeed.
    Host(String),
    /// A cap of `Limits` was reached.
    Cap { limit: String, actual: String },
    /// The uncompressed stream does not hash to the layer's DiffID.
    DiffId,
}

/// Errors that say nothing about the image and everything about the machine unpacking it.
const HOST_ERRNOS: [Errno; 7] =
    [Errno::NOSPC, Errno::DQUOT, Errno::IO, Errno::NOMEM, Errno::MFILE, Errno::NFILE, Errno::ROFS];

impl Fault {
    /// A failed system call on `path` (the entry's name as the layer wrote it, or its resolved form).
    pub(crate) fn os(op: &str, path: &[u8], errno: Errno) -> Fault {
        let cause = format!("{op} '{}': {}", show(path), std::io::Error::from(errno));
        if HOST_ERRNOS.contains(&errno) { Fault::Host(cause) } else { Fault::Refused(cause) }
    }

    /// A failed write of file content: the host's fault whatever the errno (the data came from the layer).
    pub(crate) fn write(path: &[u8], err: std::io::Error) -> Fault {
        match err.raw_os_error() {
            Some(raw) => Fault::os("write", path, Errno::from_raw_os_error(raw)),
            None => Fault::Host(format!("write '{}': {err}", show(path))),
        }
    }

    /// The decompressed tar stream could not be read (truncated, corrupt, or a cap hit underneath).
    pub(crate) fn stream(err: std::io::Error) -> Fault {
        Fault::Refused(format!("reading the tar stream: {err}"))
    }

    pub(crate) fn refused(cause: impl Into<String>) -> Fault {
        Fault::Refused(cause.into())
    }
}
