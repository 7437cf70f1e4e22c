//! What a fiber waits for: the words `runtime::dump` shows in
//! `FiberInfo::state`, the stall report, and the subject of a `TimedOut`
//! error ("tcp read timed out").
//!
//! One byte per fiber: the fiber stores its reason (Relaxed) just before it
//! parks, and any thread may read it for a report, which may then show the
//! previous reason — a report is a snapshot, never a decision. It imports
//! nothing from the crate, so the fiber header (a lower layer than `park`)
//! can hold it.
//!
//! Every variant has two texts: [`WaitReason::as_str`], the whole state
//! word ("parked: tcp read", "sleeping"), and [`WaitReason::what`], the thing
//! waited for ("tcp read"), used where a sentence names it. The table below
//! is the only place either is written.

/// Declares the enum and its two texts from one table: `parked "x"` reads
/// "parked: x" in a dump, `bare "x"` reads "x".
macro_rules! wait_reasons {
    ($($(#[doc = $doc:literal])* $variant:ident => $kind:ident $what:literal,)*) => {
        /// What a parked fiber waits for (see the module docs).
        #[repr(u8)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum WaitReason {
            $($(#[doc = $doc])* $variant,)*
        }

        impl WaitReason {
            /// Every reason, in discriminant order (for [`WaitReason::from_u8`]).
            const ALL: &'static [WaitReason] = &[$(WaitReason::$variant,)*];

            /// The state word `runtime::dump` shows, e.g. "parked: tcp read".
            pub(crate) const fn as_str(self) -> &'static str {
                match self {
                    $(WaitReason::$variant => wait_reasons!(@text $kind $what),)*
                }
            }

            /// What is waited for, without the "parked: " word, e.g.
            /// "tcp read" (for "... timed out" and the stall report).
            pub(crate) const fn what(self) -> &'static str {
                match self {
                    $(WaitReason::$variant => $what,)*
                }
            }
        }
    };
    (@text parked $what:literal) => { concat!("parked: ", $what) };
    (@text bare $what:literal) => { $what };
}

wait_reasons! {
    /// Not parked: queued or running (the header's initial value).
    Runnable => bare "runnable",
    /// `fiber::park` / `thread::park`.
    Parked => bare "parked",
    /// `sleep`, `sleep_until`.
    Sleeping => bare "sleeping",
    /// `JoinHandle::join` (and `time::timeout` waiting for its fiber).
    Join => parked "join",
    /// `fiber::scope` waiting for its fibers.
    Scope => parked "fiber scope",
    /// `block_on` waiting for its future's waker.
    Future => parked "future",
    /// `unblock` waiting for the pool thread.
    Unblock => parked "unblock",
    /// `signal::Signals` waiting for a signal.
    Signal => parked "signal wait",
    /// `TcpListener::accept`.
    TcpAccept => parked "tcp accept",
    /// `TcpStream::connect`.
    TcpConnect => parked "tcp connect",
    /// A TCP read.
    TcpRead => parked "tcp read",
    /// A TCP write.
    TcpWrite => parked "tcp write",
    /// `UnixListener::accept`.
    UnixAccept => parked "unix accept",
    /// A Unix socket read.
    UnixRead => parked "unix read",
    /// A Unix socket write.
    UnixWrite => parked "unix write",
    /// A UDP receive.
    UdpRecv => parked "udp recv",
    /// A UDP send.
    UdpSend => parked "udp send",
    /// `io::wait_readable`.
    FdReadable => parked "fd readable",
    /// `io::wait_writable`.
    FdWritable => parked "fd writable",
    /// `io::Async` read.
    AsyncRead => parked "async read",
    /// `io::Async` write.
    AsyncWrite => parked "async write",
    /// `net::Server::shutdown` waiting for the running handlers.
    ServeShutdown => parked "net::Server::shutdown (waiting for handlers)",
    /// `sync::Mutex::lock` (and a condvar re-taking its mutex).
    MutexLock => parked "mutex lock",
    /// `sync::RwLock::read`.
    RwLockRead => parked "rwlock read",
    /// `sync::RwLock::write`.
    RwLockWrite => parked "rwlock write",
    /// `sync::Condvar::wait`.
    CondvarWait => parked "condvar wait",
    /// `sync::Semaphore::acquire`.
    Semaphore => parked "semaphore",
    /// `sync::WaitGroup::wait`.
    WaitGroup => parked "waitgroup",
    /// `sync::OnceLock` waiting for another initialiser.
    OnceInit => parked "once init",
    /// `sync::Barrier::wait`.
    Barrier => parked "barrier",
    /// `select!`.
    Select => parked "select",
    /// A channel send (bounded and full).
    ChannelSend => parked "channel send",
    /// A channel receive.
    ChannelRecv => parked "channel recv",
    /// A hooked libc `connect`.
    HookConnect => parked "connect (hooked libc call)",
    /// A hooked libc socket read.
    HookRead => parked "socket read (hooked libc call)",
    /// A hooked libc socket write.
    HookWrite => parked "socket write (hooked libc call)",
    /// A hooked libc sleep.
    HookSleep => bare "sleeping (hooked libc call)",
}

impl WaitReason {
    /// The reason stored as `byte` (from [`WaitReason`]` as u8`).
    pub(crate) fn from_u8(byte: u8) -> WaitReason {
        // Only `as u8` of a variant is ever stored, so the index is in range.
        Self::ALL[byte as usize]
    }
}

#[cfg(test)]
mod tests {
    use crate::park::reason::WaitReason;

    #[test]
    fn round_trips_through_its_byte() {
        for &r in WaitReason::ALL {
            assert_eq!(WaitReason::from_u8(r as u8), r);
        }
    }

    #[test]
    fn the_design_words_are_kept() {
        assert_eq!(WaitReason::Runnable.as_str(), "runnable");
        assert_eq!(WaitReason::TcpRead.as_str(), "parked: tcp read");
        assert_eq!(WaitReason::MutexLock.as_str(), "parked: mutex lock");
        assert_eq!(WaitReason::Sleeping.as_str(), "sleeping");
        assert_eq!(WaitReason::Join.as_str(), "parked: join");
        assert_eq!(WaitReason::TcpRead.what(), "tcp read");
        assert_eq!(WaitReason::Sleeping.what(), "sleeping");
    }
}
