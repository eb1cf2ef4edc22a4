//! The two kernel calls std has no wrapper for: `splice` (moving bytes between a socket
//! and a pipe inside the kernel) and `listen` again with a larger backlog.
// The only unsafe code of moat-init: foreign declarations of libc functions, called with
// descriptors the caller borrows for the duration of the call and null offsets.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_uint};
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
