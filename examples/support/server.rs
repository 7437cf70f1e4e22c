//! What the server examples (`mini_redis`, `http_server`) share: the accept
//! loop, the `listening on ADDR` line, and a graceful stop on SIGINT/SIGTERM.
//!
//! Graceful stop, in order:
//! 1. stop accepting (the accept fiber is cancelled, which closes the
//!    listener: new connects are refused);
//! 2. shut down the read side of every open connection: a handler parked in
//!    `read` wakes with end-of-file, writes the replies to what it already
//!    read, and returns; a handler busy with a request finishes it first;
//! 3. wait (at most [`GRACE`]) until every handler has returned, then
//!    return from `main` with status 0.
//!
//! Who touches what: the accept fiber (or whoever calls the handler) adds a
//! connection to [`Connections`] and the handler's guard removes it; the
//! stopping fiber sets `stopping` and shuts every listed stream down, under
//! the same lock, so a connection registered after the stop began sees
//! `stopping` and is refused instead of being missed.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use threadlet::net::{TcpListener, TcpStream};
use threadlet::signal::{Signals, SIGINT, SIGTERM};
use threadlet::sync::{Condvar, Mutex};

/// How long a graceful stop waits for open connections to finish.
pub(crate) const GRACE: Duration = Duration::from_secs(10);

/// A running accept loop. This is the one place that accepts; swapping it
/// for `threadlet::net::serve` changes only [`listen`].
pub(crate) struct Listening {
    addr: SocketAddr,
    acceptor: threadlet::JoinHandle<()>,
}

impl Listening {
    /// The bound address (the real port when asked for port 0).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting: the listener is closed when this returns.
    pub(crate) fn shutdown(self) {
        self.acceptor.cancel();
        let _ = self.acceptor.join();
    }
}

/// Binds `addr` and runs `handler` on a fresh fiber for every connection.
pub(crate) fn listen<H>(addr: &str, handler: H) -> io::Result<Listening>
where
    H: Fn(TcpStream) + Send + Sync + 'static,
{
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    let handler = Arc::new(handler);
    let acceptor = threadlet::spawn(move || {
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    let handler = handler.clone();
                    threadlet::spawn(move || handler(stream));
                }
                // EMFILE and friends: accept has already backed off.
                Err(e) => eprintln!("accept failed: {e}"),
            }
        }
    });
    Ok(Listening { addr, acceptor })
}

/// Prints the one line scripts and tests wait for.
pub(crate) fn announce(addr: SocketAddr) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "listening on {addr}");
    let _ = out.flush();
}

#[derive(Default)]
struct Open {
    stopping: bool,
    next: u64,
    streams: HashMap<u64, Arc<TcpStream>>,
}

/// The open connections, for a graceful stop.
#[derive(Default)]
pub(crate) struct Connections {
    open: Mutex<Open>,
    emptied: Condvar,
}

/// A registered connection; dropping it unregisters it.
pub(crate) struct Registered<'a> {
    conns: &'a Connections,
    id: u64,
    /// The connection.
    pub stream: Arc<TcpStream>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut open = self.conns.open.lock().unwrap_or_else(|p| p.into_inner());
        open.streams.remove(&self.id);
        if open.streams.is_empty() {
            self.conns.emptied.notify_all();
        }
    }
}

impl Connections {
    /// Lists `stream` as open; `None` (and the stream closed) once a stop
    /// has begun.
    pub(crate) fn register(&self, stream: TcpStream) -> Option<Registered<'_>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.stopping {
            return None;
        }
        let id = open.next;
        open.next += 1;
        let stream = Arc::new(stream);
        open.streams.insert(id, stream.clone());
        Some(Registered {
            conns: self,
            id,
            stream,
        })
    }

    /// Steps 2 and 3 of the stop; returns how many connections were still
    /// open after [`GRACE`].
    pub(crate) fn drain(&self) -> usize {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.stopping = true;
        for s in open.streams.values() {
            let _ = s.shutdown(Shutdown::Read);
        }
        let (open, _) = self
            .emptied
            .wait_timeout_while(open, GRACE, |o| !o.streams.is_empty())
            .unwrap_or_else(|p| p.into_inner());
        open.streams.len()
    }
}

/// Waits for SIGINT or SIGTERM, then stops gracefully (see the module docs).
/// `signals` must have been created before the server started, so that a
/// signal sent as soon as `listening on` appears is not missed.
pub(crate) fn stop_on_signal(signals: Signals, server: Listening, conns: &Connections) {
    let sig = signals.wait().unwrap_or(SIGTERM);
    let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
    eprintln!("{name}: no longer accepting, finishing open connections");
    server.shutdown();
    let left = conns.drain();
    if left > 0 {
        eprintln!("{left} connections still open after {GRACE:?}: closing them");
    }
}

/// SIGINT and SIGTERM, caught from now on.
pub(crate) fn catch_stop_signals() -> io::Result<Signals> {
    Signals::new(&[SIGINT, SIGTERM])
}
