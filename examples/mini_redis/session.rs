//! One client connection of mini_redis: its input buffer, the commands
//! parsed from it and the replies they make. Runtime-free like `resp.rs`;
//! [`serve_blocking`] is the whole connection loop for blocking-style
//! streams (threadlet's fibers and std threads), the tokio peer writes the
//! same loop with `.await`.
//!
//! Pipelining: every read is followed by running *all* the complete
//! commands in the buffer, and their replies go out in one write.
//!
//! Timeouts ([`Limits`]): a connection that sends nothing for `idle` is
//! closed; so is one that keeps a command incomplete for longer than
//! `request` (a client dribbling one byte a second never finishes its
//! command, however regularly it sends).

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use super::resp::{self, MAX_REQUEST, OUT_BATCH};
use super::store::{Flow, Store};

/// How long a connection may stay silent, and how long one command may take
/// to arrive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Longest silence between commands.
    pub idle: Duration,
    /// Longest time from the first byte of a command to its last.
    pub request: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            idle: Duration::from_secs(300),
            request: Duration::from_secs(10),
        }
    }
}

const FIRST_BUF: usize = 8 * 1024;

/// The state of one connection between reads.
pub(crate) struct Session {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    args: Vec<std::ops::Range<usize>>,
    /// Replies not yet written.
    pub out: Vec<u8>,
    /// Complete commands wait in the buffer because `out` reached
    /// [`OUT_BATCH`]: write `out`, then call `received(0, …)` before reading.
    pub more: bool,
    partial_since: Option<Instant>,
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

impl Session {
    /// A connection with nothing read yet.
    pub(crate) fn new() -> Session {
        Session {
            buf: vec![0; FIRST_BUF],
            start: 0,
            end: 0,
            args: Vec::new(),
            out: Vec::with_capacity(FIRST_BUF),
            more: false,
            partial_since: None,
        }
    }

    /// Where the next read goes. Never empty: the buffer grows (up to
    /// [`MAX_REQUEST`], which `received` enforces) while a command is
    /// incomplete.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        socket::spare(
            &mut self.buf,
            &mut self.start,
            &mut self.end,
            MAX_REQUEST + 1,
        )
    }

    /// Runs the commands completed by `n` more bytes in [`Session::spare`],
    /// appending their replies to `out` (up to about [`OUT_BATCH`] bytes:
    /// see [`Session::more`]). `Flow::Close` after a protocol error (its
    /// `-ERR` reply is in `out`) or `QUIT`.
    pub(crate) fn received(&mut self, n: usize, store: &Store) -> Flow {
        self.end += n;
        self.more = false;
        loop {
            if self.out.len() >= OUT_BATCH {
                self.more = true;
                return Flow::Continue;
            }
            let pending = &self.buf[self.start..self.end];
            match resp::parse_command(pending, &mut self.args) {
                Ok(Some(len)) => {
                    if !self.args.is_empty()
                        && store.execute(pending, &self.args, &mut self.out) == Flow::Close
                    {
                        return Flow::Close;
                    }
                    self.start += len;
                }
                Ok(None) => break,
                Err(e) => {
                    resp::error(&mut self.out, &format!("ERR {e}"));
                    return Flow::Close;
                }
            }
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            self.partial_since = None;
        } else {
            if self.end - self.start > MAX_REQUEST {
                resp::error(&mut self.out, "ERR Protocol error: request too large");
                return Flow::Close;
            }
            self.partial_since.get_or_insert_with(Instant::now);
        }
        Flow::Continue
    }

    /// How long the next read may wait, or `None` once an incomplete command
    /// has used up `limits.request`.
    pub(crate) fn read_timeout(&self, limits: &Limits) -> Option<Duration> {
        match self.partial_since {
            None => Some(limits.idle),
            Some(t) => limits
                .request
                .checked_sub(t.elapsed())
                .filter(|d| !d.is_zero())
                .map(|d| d.min(limits.idle)),
        }
    }
}

#[path = "../support/socket.rs"]
mod socket;
use socket::linger;
pub(crate) use socket::Socket;

/// Serves one connection until the client closes it, sends bad input,
/// times out, or the read side is shut down (a graceful stop): in every case
/// the replies to the commands already read are written first.
pub(crate) fn serve_blocking<S>(stream: &S, store: &Store, limits: Limits) -> io::Result<()>
where
    S: Socket,
    for<'a> &'a S: Read + Write,
{
    let mut session = Session::new();
    let mut timeout = None;
    loop {
        let Some(want) = session.read_timeout(&limits) else {
            return Ok(()); // a command took longer than limits.request
        };
        // Only touch the socket when the timeout changes: without an
        // incomplete command it stays `idle`.
        if timeout != Some(want) {
            stream.set_read_timeout(Some(want))?;
            timeout = Some(want);
        }
        let n = match (&mut &*stream).read(session.spare()) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        let mut flow = session.received(n, store);
        loop {
            if !session.out.is_empty() {
                (&mut &*stream).write_all(&session.out)?;
                session.out.clear();
            }
            if flow == Flow::Close {
                return linger::<S>(stream);
            }
            if !session.more {
                break;
            }
            flow = session.received(0, store);
        }
    }
}
