//! The `poll(2)` fallback: how a thread that cannot park (a plain thread, the
//! blocking pool, a fiber while it unwinds, a source whose registration failed
//! or whose runtime has shut down) waits for one fd, and the `O_NONBLOCK`
//! switch every source needs. No state lives here.

use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

use super::Direction;

fn cvt_int(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Sets or clears `O_NONBLOCK`; returns whether it was set before.
pub(crate) fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<bool> {
    // SAFETY: F_GETFL takes no argument and only reads the fd's flags.
    let flags = cvt_int(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let was = flags & libc::O_NONBLOCK != 0;
    let wanted = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if wanted != flags {
        // SAFETY: F_SETFL with an int argument changes only the status flags.
        cvt_int(unsafe { libc::fcntl(fd, libc::F_SETFL, wanted) })?;
    }
    Ok(was)
}

fn poll_events(dir: Direction) -> libc::c_short {
    match dir {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    }
}

/// One `poll(2)` of `fd` for `dir` with a timeout in ms (-1: none). True when
/// ready (errors and hang-ups count as ready: the next syscall reports them).
pub(crate) fn poll_once(fd: RawFd, dir: Direction, timeout_ms: libc::c_int) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: poll_events(dir),
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd for the call.
    let n = cvt_int(unsafe { libc::poll(&mut pfd, 1, timeout_ms) })?;
    if n > 0 && pfd.revents & libc::POLLNVAL != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "fd {fd} is not open (poll reported POLLNVAL); was it closed while still in use?"
            ),
        ));
    }
    Ok(n > 0)
}

/// Blocks the calling thread in `poll(2)` until `fd` is ready for `dir` or
/// `deadline` passes (then returns `Ok` too: the caller retries its syscall
/// and reports the timeout). `EINTR` is retried with the remaining time.
pub(crate) fn poll_until(fd: RawFd, dir: Direction, deadline: Option<Instant>) -> io::Result<()> {
    loop {
        let timeout_ms = match deadline {
            None => -1,
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Ok(());
                }
                // Round up so a wait never wakes just before its deadline.
                let ms = (d - now).as_nanos().div_ceil(1_000_000);
                ms.min(libc::c_int::MAX as u128) as libc::c_int
            }
        };
        match poll_once(fd, dir, timeout_ms) {
            Ok(true) => return Ok(()),
            Ok(false) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
