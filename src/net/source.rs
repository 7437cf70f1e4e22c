//! `Socket`: the fd plus shared state behind every threadlet net type.
//!
//! # Design
//! - The fd is always `O_NONBLOCK` at the OS level; blocking semantics are
//!   emulated by [`io_loop`] (park on a fiber, `poll(2)` on a thread).
//! - `try_clone` duplicates the fd (`F_DUPFD_CLOEXEC`, like std) and shares
//!   one [`State`] through an `Arc`: one registration (one `ScheduledIo`, one
//!   epoll entry — epoll entries belong to the open file, which the dup
//!   shares), one emulated-nonblocking flag and one pair of timeouts. That is
//!   std's semantics too: `O_NONBLOCK`, `SO_RCVTIMEO` and `SO_SNDTIMEO`
//!   belong to the socket, not to one fd of it.
//! - Drop: the last clone deregisters (`EPOLL_CTL_DEL`, frees the slot, wakes
//!   waiters with `SHUTDOWN`) *before* its fd closes. If clones are dropped
//!   concurrently so that none sees itself last, the `State`'s drop frees the
//!   slot after the fds are gone; the epoll entry died with the file's last
//!   fd, and the slot's generation keeps stale events away from a new owner.
//!
//! Who touches what: `fd` is owned by one `Socket`; `State` fields are
//! atomics or the registration's `OnceLock`, written by any clone.

use std::io::{self, IoSlice, IoSliceMut};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::net::Shutdown;
use std::ops::Deref;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::sys;
use crate::park::WaitReason;
use crate::reactor::{io_loop, Direction, IoCall, Registration, READ_CLOSED, WRITE_CLOSED};

/// State shared by all clones of one socket.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) reg: Registration,
    nonblocking: AtomicBool,
    /// Nanoseconds; 0 = no timeout.
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
    /// Listener: current accept back-off in ms (0 = none).
    backoff_ms: AtomicU32,
}

/// An owned nonblocking socket fd with its shared [`State`].
pub(crate) struct Socket {
    fd: OwnedFd,
    state: Arc<State>,
}

/// First and largest accept back-off after EMFILE/ENFILE/ENOBUFS/ENOMEM.
const BACKOFF_MIN_MS: u32 = 5;
const BACKOFF_MAX_MS: u32 = 1000;

fn to_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Socket {
    /// Wraps an fd that is already nonblocking (mio made it).
    pub(crate) fn from_nonblocking(fd: OwnedFd) -> Socket {
        Socket {
            fd,
            state: Arc::default(),
        }
    }

    /// Wraps an fd for the infallible conversions (`FromRawFd`, `From<OwnedFd>`).
    pub(crate) fn adopt(fd: OwnedFd) -> Socket {
        if let Err(e) = sys::set_nonblocking(fd.as_raw_fd(), true) {
            log::warn!(
                "threadlet: cannot make fd {} nonblocking ({e}); IO on it may block its worker",
                fd.as_raw_fd()
            );
        }
        Socket::from_nonblocking(fd)
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The shared state (the `test-hooks` readiness injection reaches the
    /// registration through it).
    #[cfg(feature = "test-hooks")]
    pub(crate) fn state(&self) -> &State {
        &self.state
    }

    /// A new fd for the same socket, sharing the registration and options.
    pub(crate) fn try_clone(&self) -> io::Result<Socket> {
        Ok(Socket {
            fd: self.fd.try_clone()?,
            state: self.state.clone(),
        })
    }

    /// Gives the fd away: the last clone deregisters it and (unless emulated
    /// nonblocking mode is on) puts it back in blocking mode; while other
    /// clones live the fd stays registered and nonblocking (the flag belongs
    /// to the shared file, as with std).
    pub(crate) fn into_fd(self) -> OwnedFd {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again; each field is read
        // out exactly once, so ownership moves without a double drop.
        let (fd, state) = unsafe { (std::ptr::read(&this.fd), std::ptr::read(&this.state)) };
        if Arc::strong_count(&state) == 1 {
            state.reg.deregister(fd.as_raw_fd());
            if !state.nonblocking.load(Ordering::Relaxed) {
                let _ = sys::set_nonblocking(fd.as_raw_fd(), false);
            }
        }
        fd
    }

    /// Borrows the fd as a std (or mio) socket type for its option calls and
    /// nonblocking syscalls. It is never dropped, so it never closes the fd.
    pub(crate) fn as_std<S: FromRawFd>(&self) -> Borrowed<'_, S> {
        Borrowed {
            // SAFETY: the fd is open for as long as `&self` lives, which bounds
            // the `Borrowed`; `ManuallyDrop` keeps the second owner from ever
            // closing it.
            inner: ManuallyDrop::new(unsafe { S::from_raw_fd(self.raw()) }),
            _fd: PhantomData,
        }
    }

    // ---- options ----------------------------------------------------------

    pub(crate) fn set_nonblocking(&self, on: bool) {
        self.state.nonblocking.store(on, Ordering::Relaxed);
    }

    fn timeout_cell(&self, dir: Direction) -> &AtomicU64 {
        match dir {
            Direction::Read => &self.state.read_timeout,
            Direction::Write => &self.state.write_timeout,
        }
    }

    /// `set_read_timeout` / `set_write_timeout`, with std's zero check.
    pub(crate) fn set_timeout(&self, dir: Direction, dur: Option<Duration>) -> io::Result<()> {
        if dur == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout; use None for no timeout, or set_nonblocking(true)",
            ));
        }
        self.timeout_cell(dir)
            .store(dur.map_or(0, |d| to_nanos(d).max(1)), Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn timeout(&self, dir: Direction) -> Option<Duration> {
        match self.timeout_cell(dir).load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    // ---- IO ---------------------------------------------------------------

    /// Runs `op` through the wait loop with the socket's timeout for `dir`.
    pub(crate) fn io<R>(
        &self,
        dir: Direction,
        reason: WaitReason,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io_drained(dir, reason, |_| false, op)
    }

    /// Like [`Source::io`], with the stream's "this result drained the
    /// socket" test (see `io_loop`).
    fn io_drained<R>(
        &self,
        dir: Direction,
        reason: WaitReason,
        drained: impl Fn(&R) -> bool,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let deadline = self
            .timeout(dir)
            .and_then(|t| Instant::now().checked_add(t));
        let nonblocking = self.state.nonblocking.load(Ordering::Relaxed);
        io_loop(
            &self.state.reg,
            self.raw(),
            IoCall {
                dir,
                deadline,
                nonblocking,
                reason,
            },
            drained,
            op,
        )
    }

    /// Runs `op` through the wait loop with an explicit deadline.
    pub(crate) fn io_until<R>(
        &self,
        dir: Direction,
        deadline: Option<Instant>,
        reason: WaitReason,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let nonblocking = self.state.nonblocking.load(Ordering::Relaxed);
        io_loop(
            &self.state.reg,
            self.raw(),
            IoCall {
                dir,
                deadline,
                nonblocking,
                reason,
            },
            |_| false,
            op,
        )
    }

    /// Stream receive (`flags` 0 or `MSG_PEEK`). Only stream types call it:
    /// a short read then means the socket buffer is empty.
    pub(crate) fn recv(
        &self,
        buf: &mut [u8],
        flags: libc::c_int,
        reason: WaitReason,
    ) -> io::Result<usize> {
        let fd = self.raw();
        let len = buf.len();
        let drains = move |n: &usize| flags == 0 && *n > 0 && *n < len;
        self.io_drained(Direction::Read, reason, drains, || {
            sys::recv(fd, buf, flags)
        })
    }

    pub(crate) fn read_vectored(
        &self,
        bufs: &mut [IoSliceMut<'_>],
        reason: WaitReason,
    ) -> io::Result<usize> {
        let fd = self.raw();
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        let drains = move |n: &usize| *n > 0 && *n < len;
        self.io_drained(Direction::Read, reason, drains, || sys::readv(fd, bufs))
    }

    pub(crate) fn send(&self, buf: &[u8], reason: WaitReason) -> io::Result<usize> {
        let fd = self.raw();
        let len = buf.len();
        self.io_drained(
            Direction::Write,
            reason,
            move |n| *n < len,
            || sys::send(fd, buf),
        )
    }

    pub(crate) fn write_vectored(
        &self,
        bufs: &[IoSlice<'_>],
        reason: WaitReason,
    ) -> io::Result<usize> {
        let fd = self.raw();
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        self.io_drained(
            Direction::Write,
            reason,
            move |n| *n < len,
            || sys::sendmsg(fd, bufs),
        )
    }

    /// `shutdown(2)`, then wakes the fibers parked on the shut directions so
    /// they retry and see EOF / `BrokenPipe` (the kernel's own hang-up event
    /// would wake them too; this does not depend on it).
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        sys::shutdown(self.raw(), how)?;
        self.state.reg.wake(match how {
            Shutdown::Read => READ_CLOSED,
            Shutdown::Write => WRITE_CLOSED,
            Shutdown::Both => READ_CLOSED | WRITE_CLOSED,
        });
        Ok(())
    }

    /// An accept: `op` retried at once on `ECONNABORTED`; on fd or memory
    /// exhaustion the caller is parked for a back-off that grows while the
    /// condition persists, then the error is returned (so even a loop that
    /// ignores errors never spins).
    pub(crate) fn accept<R>(
        &self,
        reason: WaitReason,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let result = self.io(Direction::Read, reason, || loop {
            match op() {
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => continue,
                other => return other,
            }
        });
        match &result {
            Ok(_) => {
                if self.state.backoff_ms.load(Ordering::Relaxed) != 0 {
                    self.state.backoff_ms.store(0, Ordering::Relaxed);
                }
            }
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                ) =>
            {
                let ms = self
                    .state
                    .backoff_ms
                    .load(Ordering::Relaxed)
                    .clamp(BACKOFF_MIN_MS, BACKOFF_MAX_MS);
                self.state
                    .backoff_ms
                    .store((ms * 2).min(BACKOFF_MAX_MS), Ordering::Relaxed);
                crate::fiber::sleep(Duration::from_millis(ms as u64));
            }
            Err(_) => {}
        }
        result
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if Arc::strong_count(&self.state) == 1 {
            self.state.reg.deregister(self.fd.as_raw_fd());
        }
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A std/mio socket type viewing a [`Socket`]'s fd without owning it.
pub(crate) struct Borrowed<'a, S> {
    inner: ManuallyDrop<S>,
    _fd: PhantomData<&'a OwnedFd>,
}

impl<S> Deref for Borrowed<'_, S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.inner
    }
}

/// Implements the fd traits, std conversions and `Debug` for a net type
/// whose field `sock` is a [`Socket`] and whose std twin is `$std`.
macro_rules! fd_traits {
    ($ty:ident, $std:ty) => {
        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.sock)
            }
        }
        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.sock.raw()
            }
        }
        impl std::os::fd::IntoRawFd for $ty {
            /// Gives the fd away (in blocking mode when this was the last clone).
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                std::os::fd::IntoRawFd::into_raw_fd(self.sock.into_fd())
            }
        }
        impl std::os::fd::FromRawFd for $ty {
            /// Takes ownership of `fd` and makes it nonblocking.
            ///
            /// # Safety
            /// `fd` must be an open socket of the right kind that nothing else
            /// owns (as for std's `from_raw_fd`).
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> Self {
                // SAFETY: the caller hands over an owned, open fd.
                let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
                $ty {
                    sock: $crate::net::source::Socket::adopt(fd),
                }
            }
        }
        impl From<std::os::fd::OwnedFd> for $ty {
            /// Takes ownership of the fd and makes it nonblocking.
            fn from(fd: std::os::fd::OwnedFd) -> Self {
                $ty {
                    sock: $crate::net::source::Socket::adopt(fd),
                }
            }
        }
        impl From<$ty> for std::os::fd::OwnedFd {
            /// Gives the fd away (in blocking mode when this was the last clone).
            fn from(value: $ty) -> Self {
                value.sock.into_fd()
            }
        }
        impl From<$std> for $ty {
            /// Adopts a std socket (it is made nonblocking at the OS level;
            /// blocking behaviour is emulated).
            fn from(value: $std) -> Self {
                $ty {
                    sock: $crate::net::source::Socket::adopt(value.into()),
                }
            }
        }
        impl $ty {
            /// Converts into the std type, deregistered and in blocking mode
            /// (unless emulated nonblocking mode was on, or clones of this
            /// socket are still alive: `O_NONBLOCK` is shared by all of them).
            ///
            /// # Errors
            /// None today; the `Result` leaves room for a failed mode change.
            pub fn into_std(self) -> std::io::Result<$std> {
                Ok(<$std>::from(self.sock.into_fd()))
            }
        }
    };
}
pub(crate) use fd_traits;

/// `Read` and `Write` for a stream type and for a shared reference to it
/// (`$read`/`$write`: the `runtime::dump` reasons), all going through the
/// stream's `Socket`, like std's impls for `TcpStream` and `&TcpStream`.
macro_rules! stream_io {
    ($ty:ty, $read:expr, $write:expr) => {
        impl std::io::Read for $ty {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                (&*self).read(buf)
            }
            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                (&*self).read_vectored(bufs)
            }
        }

        impl std::io::Read for &$ty {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.sock.recv(buf, 0, $read)
            }
            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                self.sock.read_vectored(bufs, $read)
            }
        }

        impl std::io::Write for $ty {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                (&*self).write(buf)
            }
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                (&*self).write_vectored(bufs)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Write for &$ty {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.sock.send(buf, $write)
            }
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.sock.write_vectored(bufs, $write)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}
pub(crate) use stream_io;
