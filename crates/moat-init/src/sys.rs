//! The kernel calls std has no wrapper for: `splice` (moving bytes between a socket and a
//! pipe inside the kernel), `listen` again with a larger backlog, and `sendmsg` with a
//! descriptor attached (handing the listening socket to the proxy).
// The only unsafe code of moat-init: foreign declarations of libc functions, called with
// descriptors the caller borrows for the duration of the call and null offsets.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_uint, c_void};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// A hint that pages may be moved rather than copied; harmless where they cannot be.
const SPLICE_F_MOVE: c_uint = 1;

unsafe extern "C" {
    fn splice(
        fd_in: c_int,
        off_in: *mut i64,
        fd_out: c_int,
        off_out: *mut i64,
        len: usize,
        flags: c_uint,
    ) -> isize;
    fn listen(fd: c_int, backlog: c_int) -> c_int;
    fn sendmsg(fd: c_int, msg: *const MsgHdr, flags: c_int) -> isize;
    #[cfg(test)]
    fn recvmsg(fd: c_int, msg: *mut MsgHdr, flags: c_int) -> isize;
}

/// `struct iovec`.
#[repr(C)]
struct IoVec {
    base: *mut c_void,
    len: usize,
}

/// `struct msghdr` (Linux; `size_t` lengths, as glibc, which this program is linked with).
#[repr(C)]
struct MsgHdr {
    name: *mut c_void,
    name_len: u32,
    iov: *mut IoVec,
    iov_len: usize,
    control: *mut c_void,
    control_len: usize,
    flags: c_int,
}

impl MsgHdr {
    /// A message of one buffer, `iov`, and one control message, `control`.
    fn one(iov: &mut IoVec, control: &mut OneFd) -> Self {
        MsgHdr {
            name: std::ptr::null_mut(),
            name_len: 0,
            iov,
            iov_len: 1,
            control: std::ptr::from_mut(control).cast(),
            control_len: std::mem::size_of::<OneFd>(),
            flags: 0,
        }
    }
}

/// One `cmsghdr` carrying one descriptor, padded to `CMSG_SPACE(sizeof(int))`.
#[repr(C)]
#[cfg_attr(target_pointer_width = "64", repr(align(8)))]
struct OneFd {
    len: usize,
    level: c_int,
    kind: c_int,
    fd: c_int,
}

const SOL_SOCKET: c_int = 1;
const SCM_RIGHTS: c_int = 1;
const MSG_NOSIGNAL: c_int = 0x4000;

/// Send the byte `byte` on the unix socket `socket` with a duplicate of `fd` attached
/// (`SCM_RIGHTS`): the receiver gets its own descriptor of the same open socket.
pub fn send_fd(socket: BorrowedFd<'_>, fd: BorrowedFd<'_>, byte: u8) -> io::Result<()> {
    let mut data = [byte];
    let mut iov = IoVec {
        base: data.as_mut_ptr().cast(),
        len: data.len(),
    };
    let mut control = OneFd {
        len: std::mem::offset_of!(OneFd, fd) + std::mem::size_of::<c_int>(),
        level: SOL_SOCKET,
        kind: SCM_RIGHTS,
        fd: fd.as_raw_fd(),
    };
    let msg = MsgHdr::one(&mut iov, &mut control);
    loop {
        // SAFETY: every pointer in `msg` points at a local that outlives the call, with
        // the lengths given; both descriptors are open for the call (borrowed).
        let n = unsafe { sendmsg(socket.as_raw_fd(), &msg, MSG_NOSIGNAL) };
        if n == 1 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if n >= 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Move up to `len` bytes from `from` to `to` (one of them a pipe) without copying them
/// through user space. Blocks like a read of `from`; 0 means end of input.
pub fn splice_fds(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    loop {
        // SAFETY: both descriptors are open for the call (borrowed), the offsets are null
        // (both ends are streams), and splice touches no memory of this process.
        let n = unsafe {
            splice(
                from.as_raw_fd(),
                std::ptr::null_mut(),
                to.as_raw_fd(),
                std::ptr::null_mut(),
                len,
                SPLICE_F_MOVE,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Set the backlog of a listening socket (calling `listen` again on Linux just updates it).
/// std listens with 128; a burst of new connections from a parallel client must not find
/// the queue full, which costs the connection a one-second SYN retry.
pub fn set_backlog(socket: BorrowedFd<'_>, backlog: c_int) -> io::Result<()> {
    // SAFETY: the descriptor is open for the call; listen touches no memory of ours.
    if unsafe { listen(socket.as_raw_fd(), backlog) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The receiving side of [`send_fd`], for its tests: the byte and the descriptor.
#[cfg(test)]
pub fn recv_fd(socket: BorrowedFd<'_>) -> io::Result<(u8, Option<std::os::fd::OwnedFd>)> {
    use std::os::fd::FromRawFd as _;
    let mut data = [0u8];
    let mut iov = IoVec {
        base: data.as_mut_ptr().cast(),
        len: data.len(),
    };
    let mut control = OneFd {
        len: 0,
        level: 0,
        kind: 0,
        fd: -1,
    };
    let mut msg = MsgHdr::one(&mut iov, &mut control);
    // SAFETY: as for `sendmsg`; the kernel writes at most the lengths given.
    let n = unsafe { recvmsg(socket.as_raw_fd(), &raw mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = (msg.control_len > 0 && control.level == SOL_SOCKET && control.kind == SCM_RIGHTS)
        // SAFETY: the kernel installed this descriptor for this process just now.
        .then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(control.fd) });
    Ok((data[0], fd))
}
