//! Pre-started runtimes (`Spec::prestart`): the sandbox is built and the interpreter with openfc's shim runs in
//! it before any function is known, waiting for one line on its stdin. A cold start hands it a function over the
//! launcher's control socket (its stdin, a Unix stream socket): the package and merged layers as detached,
//! read-only mounts (`open_tree` in openfc's own mount namespace), passed as descriptors, which the sandbox's init
//! attaches at `/code` and `/opt` with `move_mount` inside the instance's mount namespace; then the activation
//! line (the function's environment), which init writes to the runtime's stdin. Only then does user code load.
//!
//! Wire format of the activation: a 4-byte big-endian length, then that many bytes of JSON
//! `{"mounts": ["/code", ...], "activation": "<one line>"}`; the descriptors travel with the first bytes, one
//! per mount, in order.

use std::io::Error;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::sys::{Result, check};

/// Most descriptors one activation carries (the package and the layers).
const MAX_FDS: usize = 4;
/// Largest activation accepted (the function's environment is at most a few KiB).
const MAX_MESSAGE: usize = 1 << 20;

#[derive(Serialize, Deserialize)]
struct Message {
    mounts: Vec<String>,
    /// Networks the function may not reach (`Spec::blackhole`), routed to nowhere before its code loads.
    #[serde(default)]
    blackhole: Vec<crate::Net>,
    activation: String,
}

fn cpath(p: &Path) -> std::io::Result<std::ffi::CString> {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| Error::from_raw_os_error(libc::EINVAL))
}

/// A detached copy of the mount tree at `path`, read-only, nosuid and nodev down to its last submount, ready to
/// be attached in another mount namespace.
pub fn detached_bind(path: &Path) -> std::io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
    let p = cpath(path)?;
    // SAFETY: a valid C string; open_tree returns a new descriptor or -1.
    let fd = unsafe {
        libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, p.as_ptr(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as libc::c_uint)
    };
    if fd < 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: open_tree returned a descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let empty = std::ffi::CString::default();
    if crate::mounts::seal_at(fd.as_raw_fd(), &empty, libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) < 0 {
        return Err(Error::last_os_error());
    }
    Ok(fd)
}

/// Hands a pre-started sandbox its function: `mounts` (detached trees and where they go) and the runtime's
/// activation line. `sock` is the invoker's end of the launcher's control socket.
pub fn send_activation(
    sock: BorrowedFd<'_>,
    mounts: &[(BorrowedFd<'_>, &str)],
    blackhole: &[crate::Net],
    activation: &str,
) -> std::io::Result<()> {
    if mounts.len() > MAX_FDS || activation.contains('\n') {
        return Err(Error::from_raw_os_error(libc::EINVAL));
    }
    let msg = Message {
        mounts: mounts.iter().map(|(_, t)| (*t).to_owned()).collect(),
        blackhole: blackhole.to_vec(),
        activation: activation.to_owned(),
    };
    let json = serde_json::to_vec(&msg).map_err(|e| Error::new(std::io::ErrorKind::InvalidInput, e))?;
    if json.len() > MAX_MESSAGE {
        return Err(Error::from_raw_os_error(libc::E2BIG));
    }
    let mut data = (json.len() as u32).to_be_bytes().to_vec();
    data.extend_from_slice(&json);
    let fds: Vec<RawFd> = mounts.iter().map(|(fd, _)| fd.as_raw_fd()).collect();
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE((fds.len() * std::mem::size_of::<RawFd>()) as u32) } as usize;
    let mut control = vec![0u8; space.max(1)];
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
    // SAFETY: a zeroed msghdr is a valid empty header; every pointer set below outlives the sendmsg call.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    if !fds.is_empty() {
        hdr.msg_control = control.as_mut_ptr().cast();
        hdr.msg_controllen = space;
        // SAFETY: the control buffer has room for one header with `fds.len()` descriptors (CMSG_SPACE).
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&hdr);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN((fds.len() * std::mem::size_of::<RawFd>()) as u32) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast::<RawFd>(), fds.len());
        }
    }
    // The first sendmsg carries the descriptors; whatever it did not take goes after them.
    // SAFETY: `hdr` describes live buffers.
    let sent = unsafe { libc::sendmsg(sock.as_raw_fd(), &hdr, libc::MSG_NOSIGNAL) };
    if sent < 0 {
        return Err(Error::last_os_error());
    }
    let mut rest = &data[sent as usize..];
    while !rest.is_empty() {
        // SAFETY: `rest` is a live buffer of the length given.
        let n = unsafe { libc::send(sock.as_raw_fd(), rest.as_ptr().cast(), rest.len(), libc::MSG_NOSIGNAL) };
        if n < 0 {
            let e = Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        rest = &rest[n as usize..];
    }
    Ok(())
}

/// Init's side: waits for the activation on `ctrl` while watching the runtime. `Ok(None)`: the function's
/// mounts are attached and the activation line written to `runtime_stdin` (then closed). `Ok(Some(code))`: the
/// runtime ended first, or the invoker closed the socket (the runtime is then killed): init should reap and end.
pub(crate) fn wait_activation(ctrl: RawFd, runtime: libc::pid_t, runtime_stdin: RawFd) -> Result<Option<i32>> {
    loop {
        let mut pfd = libc::pollfd { fd: ctrl, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 200) };
        let mut status = 0;
        // SAFETY: a valid out-pointer; `runtime` is our child.
        if unsafe { libc::waitpid(runtime, &mut status, libc::WNOHANG) } == runtime {
            return Ok(Some(if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) }));
        }
        if r > 0 {
            break;
        }
        if r < 0 && Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(format!("poll: {}", Error::last_os_error()));
        }
    }
    let Some((msg, fds)) = recv_message(ctrl)? else {
        // Not needed after all (openfc stops, or discards this sandbox).
        crate::kill(runtime);
        return Ok(None);
    };
    let msg: Message = serde_json::from_slice(&msg).map_err(|e| format!("the activation is not valid: {e}"))?;
    if msg.mounts.len() != fds.len() {
        return Err(format!("the activation names {} mounts but carries {} descriptors", msg.mounts.len(), fds.len()));
    }
    for (fd, target) in fds.iter().zip(&msg.mounts) {
        attach(fd.as_raw_fd(), target)?;
    }
    for net in &msg.blackhole {
        crate::sys::blackhole_route(*net).map_err(|e| format!("blackhole route to {net}: {e}"))?;
    }
    drop(fds);
    let mut line = msg.activation.into_bytes();
    line.push(b'\n');
    let mut rest = line.as_slice();
    while !rest.is_empty() {
        // SAFETY: `rest` is a live buffer of the length given.
        let n = unsafe { libc::write(runtime_stdin, rest.as_ptr().cast(), rest.len()) };
        if n < 0 {
            if Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(format!("handing the runtime its function: {}", Error::last_os_error()));
        }
        rest = &rest[n as usize..];
    }
    // SAFETY: closes the descriptor init owns: the runtime reads EOF after its line.
    unsafe { libc::close(runtime_stdin) };
    Ok(None)
}

/// One length-prefixed message and the descriptors sent with it; `None` at EOF before any byte.
fn recv_message(ctrl: RawFd) -> Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let mut head = [0u8; 4];
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE((MAX_FDS * std::mem::size_of::<RawFd>()) as u32) } as usize;
    let mut control = vec![0u8; space];
    let mut iov = libc::iovec { iov_base: head.as_mut_ptr().cast(), iov_len: 1 };
    // SAFETY: a zeroed msghdr is a valid empty header; its pointers below outlive recvmsg.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = control.as_mut_ptr().cast();
    hdr.msg_controllen = space;
    // One byte first: the descriptors arrive with it (they are attached to the first byte sent).
    let n = loop {
        // SAFETY: `hdr` describes live buffers.
        let n = unsafe { libc::recvmsg(ctrl, &mut hdr, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 && Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        break check(n as libc::c_int, "recvmsg")?;
    };
    if n == 0 {
        return Ok(None);
    }
    let mut fds = Vec::new();
    if hdr.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err("the activation carried too many descriptors".into());
    }
    // SAFETY: walks the control headers the kernel wrote into `control`, within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&hdr);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<RawFd>();
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&hdr, cmsg);
        }
    }
    read_exact(ctrl, &mut head[1..])?;
    let len = u32::from_be_bytes(head) as usize;
    if len > MAX_MESSAGE {
        return Err(format!("the activation is too large ({len} bytes)"));
    }
    let mut body = vec![0u8; len];
    read_exact(ctrl, &mut body)?;
    Ok(Some((body, fds)))
}

fn read_exact(fd: RawFd, mut buf: &mut [u8]) -> Result<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is a live buffer of the length given.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            if Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(format!("reading the activation: {}", Error::last_os_error()));
        }
        if n == 0 {
            return Err("the activation ended early".into());
        }
        buf = &mut buf[n as usize..];
    }
    Ok(())
}

/// Attaches a detached mount at `target` (an empty directory of the instance's root).
fn attach(fd: RawFd, target: &str) -> Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    if !matches!(target, "/code" | "/opt") {
        return Err(format!("the activation may mount only /code and /opt, not {target:?}"));
    }
    let empty = std::ffi::CString::default();
    let to = std::ffi::CString::new(target).map_err(|_| "NUL in a mount target".to_owned())?;
    // SAFETY: a valid descriptor and two valid C strings.
    let r = unsafe { libc::syscall(libc::SYS_move_mount, fd, empty.as_ptr(), libc::AT_FDCWD, to.as_ptr(), MOVE_MOUNT_F_EMPTY_PATH) };
    check(r as libc::c_int, &format!("attaching the function's files at {target}"))?;
    Ok(())
}
