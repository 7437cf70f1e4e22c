//! Readiness waits for any fd: [`wait_readable`], [`wait_writable`], and the
//! [`Async`] wrapper that turns a nonblocking fd object's `WouldBlock` into a
//! park.
//!
//! # Design
//! - `wait_readable`/`wait_writable` take a borrowed fd that threadlet does
//!   not own and may already be registered elsewhere (in this runtime's epoll
//!   through a threadlet socket, or in another epoll). So each wait that has
//!   to park registers a *temporary duplicate* of the fd (`F_DUPFD_CLOEXEC`):
//!   epoll keys its entries by (fd number, open file), so the duplicate never
//!   collides with another registration, and any number of fibers may wait on
//!   the same fd at once. A cheap `poll(2)` with timeout 0 answers first, so
//!   an fd that is already ready costs one syscall; a wait that parks costs
//!   `dup` + `EPOLL_CTL_ADD` + `EPOLL_CTL_DEL` + `close` besides. For an fd
//!   you wait on again and again, wrap it in [`Async`], which registers once.
//! - [`Async`] owns its object, sets `O_NONBLOCK` on the fd (restored by
//!   [`Async::into_inner`]), registers lazily with the first waiter's runtime
//!   like the net types, and deregisters before the object (and its fd) is
//!   dropped.
//! - On a plain thread (or while unwinding) all of these wait in `poll(2)`.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::park::WaitReason;
use crate::reactor::{
    self as wait, can_park, io_loop, sys, Direction, IoCall, Registration, ScheduledIo,
};

const READABLE: WaitReason = WaitReason::FdReadable;
const WRITABLE: WaitReason = WaitReason::FdWritable;
const ASYNC_READ: WaitReason = WaitReason::AsyncRead;
const ASYNC_WRITE: WaitReason = WaitReason::AsyncWrite;

/// Parks the calling fiber (or blocks the calling thread) until `fd` is
/// readable — data, EOF, a hang-up or an error count as readable — or
/// `timeout` passes (`ErrorKind::TimedOut`).
///
/// ```
/// use std::io::Write;
/// use std::time::Duration;
/// use threadlet::net::UnixStream;
///
/// threadlet::run(|| {
///     let (a, mut b) = UnixStream::pair().unwrap();
///     let waiter = threadlet::spawn(move || threadlet::io::wait_readable(&a, Some(Duration::from_secs(10))));
///     b.write_all(b"x").unwrap();
///     waiter.join().unwrap().unwrap();
/// });
/// ```
///
/// # Errors
/// `TimedOut`; an fd that is not open; the OS refusing a duplicate of the fd.
pub fn wait_readable(fd: impl AsFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_fd(fd.as_fd(), Direction::Read, timeout)
}

/// Like [`wait_readable`], for writability.
///
/// # Errors
/// As [`wait_readable`].
pub fn wait_writable(fd: impl AsFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_fd(fd.as_fd(), Direction::Write, timeout)
}

/// A temporary registration of a duplicate fd; deregistered before the
/// duplicate closes, also when the waiting fiber unwinds.
struct TempRegistration {
    fd: OwnedFd,
    reg: Registration,
}

impl Drop for TempRegistration {
    fn drop(&mut self) {
        self.reg.deregister(self.fd.as_raw_fd());
    }
}

fn wait_fd(fd: BorrowedFd<'_>, dir: Direction, timeout: Option<Duration>) -> io::Result<()> {
    let reason = match dir {
        Direction::Read => READABLE,
        Direction::Write => WRITABLE,
    };
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let raw = fd.as_raw_fd();
    wait::spend_budget();
    if sys::poll_once(raw, dir, 0)? {
        return Ok(());
    }
    let temp = if can_park() {
        let temp = TempRegistration {
            fd: fd.try_clone_to_owned()?,
            reg: Registration::new(),
        };
        temp.reg
            .register(temp.fd.as_raw_fd())
            .is_some()
            .then_some(temp)
    } else {
        None
    };
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(wait::timed_out(reason));
        }
        match temp.as_ref().and_then(|t| t.reg.live().map(|r| &r.io)) {
            Some(io) if can_park() => {
                if is_ready(io, dir) {
                    return Ok(());
                }
                wait::wait_on(io, dir, deadline, reason);
                if is_ready(io, dir) {
                    return Ok(());
                }
            }
            // A plain thread, an unwinding fiber, or no registration.
            _ => {
                sys::poll_until(raw, dir, deadline)?;
                if sys::poll_once(raw, dir, 0)? {
                    return Ok(());
                }
            }
        }
    }
}

fn is_ready(io: &ScheduledIo, dir: Direction) -> bool {
    ScheduledIo::is_ready(io.readiness(), dir) && !io.is_shutdown()
}

/// An fd-backed object (a pipe, an eventfd, a foreign socket, a tty...)
/// whose `Read`/`Write` park the calling fiber instead of returning
/// `WouldBlock`. `Async::new` puts the fd in nonblocking mode.
///
/// ```
/// use std::io::{Read, Write};
/// use threadlet::io::Async;
///
/// threadlet::run(|| {
///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
///     let mut a = Async::new(a).unwrap();
///     let mut b = Async::new(b).unwrap();
///     let reader = threadlet::spawn(move || {
///         let mut buf = [0; 2];
///         b.read_exact(&mut buf).unwrap();
///         buf
///     });
///     a.write_all(b"hi").unwrap();
///     assert_eq!(&reader.join().unwrap(), b"hi");
/// });
/// ```
pub struct Async<T: AsFd> {
    io: Option<T>,
    reg: Registration,
    was_nonblocking: bool,
}

impl<T: AsFd> Async<T> {
    /// Takes ownership of `io` and sets `O_NONBLOCK` on its fd.
    ///
    /// # Errors
    /// The fd's flags cannot be read or changed (a closed fd).
    pub fn new(io: T) -> io::Result<Async<T>> {
        let was_nonblocking = sys::set_nonblocking(io.as_fd().as_raw_fd(), true)?;
        Ok(Async {
            io: Some(io),
            reg: Registration::new(),
            was_nonblocking,
        })
    }

    /// The wrapped object.
    pub fn get_ref(&self) -> &T {
        self.io
            .as_ref()
            .expect("Async holds its object until into_inner")
    }

    /// The wrapped object, mutably. Do not swap its fd out: the registration
    /// belongs to the fd `Async::new` saw.
    pub fn get_mut(&mut self) -> &mut T {
        self.io
            .as_mut()
            .expect("Async holds its object until into_inner")
    }

    /// Deregisters the fd and gives the object back, with `O_NONBLOCK` as it
    /// was before `Async::new`.
    ///
    /// # Errors
    /// The fd's flags cannot be restored.
    pub fn into_inner(mut self) -> io::Result<T> {
        let io = self
            .io
            .take()
            .expect("Async holds its object until into_inner");
        let fd = io.as_fd().as_raw_fd();
        self.reg.deregister(fd);
        if !self.was_nonblocking {
            sys::set_nonblocking(fd, false)?;
        }
        Ok(io)
    }

    fn raw(&self) -> RawFd {
        self.get_ref().as_fd().as_raw_fd()
    }

    /// Runs `op` until it does not return `WouldBlock`, parking until the fd
    /// is readable in between (for calls `Read` does not cover: `recvmsg`,
    /// eventfd reads, ...).
    pub fn read_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        let io = self.get_ref();
        io_loop(
            &self.reg,
            self.raw(),
            IoCall {
                dir: Direction::Read,
                deadline: None,
                nonblocking: false,
                reason: ASYNC_READ,
            },
            |_| false,
            || op(io),
        )
    }

    /// Like [`Async::read_with`] with a mutable object.
    pub fn read_with_mut<R>(
        &mut self,
        mut op: impl FnMut(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        let fd = self.raw();
        let io = self
            .io
            .as_mut()
            .expect("Async holds its object until into_inner");
        io_loop(
            &self.reg,
            fd,
            IoCall {
                dir: Direction::Read,
                deadline: None,
                nonblocking: false,
                reason: ASYNC_READ,
            },
            |_| false,
            || op(io),
        )
    }

    /// Like [`Async::read_with`], waiting for writability.
    pub fn write_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        let io = self.get_ref();
        io_loop(
            &self.reg,
            self.raw(),
            IoCall {
                dir: Direction::Write,
                deadline: None,
                nonblocking: false,
                reason: ASYNC_WRITE,
            },
            |_| false,
            || op(io),
        )
    }

    /// Like [`Async::write_with`] with a mutable object.
    pub fn write_with_mut<R>(
        &mut self,
        mut op: impl FnMut(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        let fd = self.raw();
        let io = self
            .io
            .as_mut()
            .expect("Async holds its object until into_inner");
        io_loop(
            &self.reg,
            fd,
            IoCall {
                dir: Direction::Write,
                deadline: None,
                nonblocking: false,
                reason: ASYNC_WRITE,
            },
            |_| false,
            || op(io),
        )
    }
}

impl<T: AsFd> Drop for Async<T> {
    fn drop(&mut self) {
        if let Some(io) = &self.io {
            self.reg.deregister(io.as_fd().as_raw_fd());
        }
    }
}

impl<T: AsFd> AsFd for Async<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.get_ref().as_fd()
    }
}

impl<T: AsFd> AsRawFd for Async<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.raw()
    }
}

impl<T: AsFd + fmt::Debug> fmt::Debug for Async<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Async").field("io", &self.io).finish()
    }
}

impl<T: AsFd + Read> Read for Async<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with_mut(|io| io.read(buf))
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_with_mut(|io| io.read_vectored(bufs))
    }
}

impl<T: AsFd> Read for &Async<T>
where
    for<'a> &'a T: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(|mut io| io.read(buf))
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_with(|mut io| io.read_vectored(bufs))
    }
}

impl<T: AsFd + Write> Write for Async<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_with_mut(|io| io.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_with_mut(|io| io.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.write_with_mut(|io| io.flush())
    }
}

impl<T: AsFd> Write for &Async<T>
where
    for<'a> &'a T: Write,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_with(|mut io| io.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_with(|mut io| io.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.write_with(|mut io| io.flush())
    }
}

/// Test hook (not part of the API): runs `hook` in every IO wait on the
/// calling thread — on a fiber, on every fiber of its worker — after the
/// waiter is published and before the fiber parks. `None` removes it.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub fn __set_before_park_hook(hook: Option<fn()>) {
    crate::context::set_before_park_hook(hook);
}
