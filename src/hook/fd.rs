//! The per-fd table of the hooks: what an fd number is (socket or not), its
//! reactor registration, and the toggle bit of `accept`/`connect`. The states
//! and who touches what are in the module docs of `hook/mod.rs`.

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use libc::c_int;

use super::sys;
use crate::net::wait::Registration;

/// Slots per chunk, and chunks: fds up to 4096 * 1024 (4 Mi) are tracked;
/// sockets with larger fd numbers are waited for with `poll(2)`, blocking
/// the worker.
const CHUNK: usize = 4096;
const CHUNKS: usize = 1024;

const KIND_MASK: u32 = 0b11;
const REGISTERED: u32 = 1 << 2;
const TOGGLE: u32 = 1 << 3;
/// The toggle epoch counts in the bits above.
const EPOCH_ONE: u32 = 1 << 4;

/// What an fd number is, as far as the hooks know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Not classified yet.
    Unknown = 0,
    /// Not a socket (file, pipe, tty, eventfd...), or fd 0-2.
    Other = 1,
    /// A `SOCK_STREAM` socket.
    Stream = 2,
    /// Any other socket (datagram, seqpacket, raw).
    Dgram = 3,
}

/// One fd number's entry.
pub(super) struct Slot {
    word: AtomicU32,
    reg: Mutex<Option<Arc<Registration>>>,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            word: AtomicU32::new(0),
            reg: Mutex::new(None),
        }
    }
}

/// Chunks 1.. of the table, allocated on first use and never freed.
static TABLE: [AtomicPtr<Slot>; CHUNKS] = [const { AtomicPtr::new(ptr::null_mut()) }; CHUNKS];
/// Chunk 0 (fds below 4096, the ones almost every program uses) is static:
/// classifying them never allocates, not even in a signal handler.
static FIRST: [Slot; CHUNK] = [const { Slot::new() }; CHUNK];

fn split(fd: c_int) -> Option<(usize, usize)> {
    let fd = usize::try_from(fd).ok()?;
    let chunk = fd / CHUNK;
    (chunk < CHUNKS).then_some((chunk, fd % CHUNK))
}

/// The slot of `fd` if its chunk exists (no allocation, no lock).
#[inline]
pub(super) fn slot(fd: c_int) -> Option<&'static Slot> {
    let (chunk, index) = split(fd)?;
    if chunk == 0 {
        return Some(&FIRST[index]);
    }
    let base = TABLE[chunk].load(Ordering::Acquire);
    if base.is_null() {
        return None;
    }
    // SAFETY: a published chunk is CHUNK slots, never freed; `index < CHUNK`.
    Some(unsafe { &*base.add(index) })
}

/// The slot of `fd`, allocating its chunk (fiber path only).
fn slot_alloc(fd: c_int) -> Option<&'static Slot> {
    if let Some(s) = slot(fd) {
        return Some(s);
    }
    let (chunk, _) = split(fd)?;
    let fresh: Box<[Slot]> = (0..CHUNK).map(|_| Slot::new()).collect();
    let fresh = Box::into_raw(fresh) as *mut Slot;
    if let Err(_other) =
        TABLE[chunk].compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire)
    {
        // SAFETY: `fresh` came from `Box::into_raw` of CHUNK slots just above
        // and was never published.
        drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(fresh, CHUNK)) });
    }
    slot(fd)
}

/// What `fd` is; classifies it on first sight (fiber path: may allocate).
pub(super) fn kind(fd: c_int) -> Kind {
    if fd <= 2 {
        // stdin/out/err are shared with the parent and the terminal.
        return Kind::Other;
    }
    if let Some(s) = slot(fd) {
        match s.word.load(Ordering::Acquire) & KIND_MASK {
            1 => return Kind::Other,
            2 => return Kind::Stream,
            3 => return Kind::Dgram,
            _ => {}
        }
    }
    let kind = classify(fd);
    let slot = match kind {
        Kind::Unknown => return kind,
        _ => slot_alloc(fd),
    };
    if let Some(s) = slot {
        let _ = s
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w & KIND_MASK == 0).then_some(w | kind as u32)
            });
    }
    kind
}

fn classify(fd: c_int) -> Kind {
    // SAFETY: an all-zero `stat` is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is valid for writes.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Kind::Unknown;
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Kind::Other;
    }
    let mut ty: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: `ty` and `len` are valid for writes; `len` holds ty's size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut ty as *mut c_int).cast(),
            &mut len,
        )
    };
    match (r, ty) {
        (0, libc::SOCK_STREAM) => Kind::Stream,
        (0, _) => Kind::Dgram,
        _ => Kind::Unknown,
    }
}

/// The registration of `fd` (created on first use; registered with the
/// reactor by `io_loop`'s first wait).
pub(super) fn registration(fd: c_int) -> Option<Arc<Registration>> {
    let s = slot_alloc(fd)?;
    let mut reg = crate::fiber::lock(&s.reg);
    let r = reg
        .get_or_insert_with(|| Arc::new(Registration::new()))
        .clone();
    s.word.fetch_or(REGISTERED, Ordering::AcqRel);
    Some(r)
}

/// The registration of `fd` if a fiber made one (one atomic load when not).
pub(super) fn registered(fd: c_int) -> Option<Arc<Registration>> {
    let s = slot(fd)?;
    if s.word.load(Ordering::Acquire) & REGISTERED == 0 {
        return None;
    }
    crate::fiber::lock(&s.reg).clone()
}

/// Forgets what is known about `fd`, deregistering it first if a fiber
/// registered it. Called before the fd is closed, replaced or switched to
/// nonblocking, and after a new fd got this number. Off a fiber this is one
/// atomic load unless the fd was registered.
pub(super) fn reset(fd: c_int) {
    let Some(s) = slot(fd) else { return };
    let w = s.word.load(Ordering::Acquire);
    if w & (KIND_MASK | REGISTERED) == 0 {
        return;
    }
    if w & REGISTERED != 0 {
        let taken = crate::fiber::lock(&s.reg).take();
        s.word
            .fetch_and(!(REGISTERED | KIND_MASK), Ordering::AcqRel);
        if let Some(reg) = taken {
            reg.deregister(fd);
        }
    } else {
        s.word.fetch_and(!KIND_MASK, Ordering::AcqRel);
    }
}

/// Runs `call` with `O_NONBLOCK` set on `fd` (whose flags are `flags`, without
/// it), restoring the flags right after, under the slot's toggle bit. errno
/// is `call`'s.
pub(super) fn toggled<R>(fd: c_int, flags: c_int, call: impl FnOnce() -> R) -> R {
    let s = slot_alloc(fd);
    if let Some(s) = s {
        loop {
            let w = s.word.load(Ordering::Relaxed);
            if w & TOGGLE == 0
                && s.word
                    .compare_exchange_weak(
                        w,
                        (w | TOGGLE).wrapping_add(EPOCH_ONE),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                break;
            }
            // The holder makes three syscalls and never parks.
            std::hint::spin_loop();
        }
    }
    // SAFETY: F_SETFL with an int argument changes only the status flags.
    unsafe { sys::fcntl(fd, libc::F_SETFL, (flags | libc::O_NONBLOCK) as usize) };
    let r = call();
    let e = super::errno();
    // SAFETY: as above.
    unsafe { sys::fcntl(fd, libc::F_SETFL, flags as usize) };
    if let Some(s) = s {
        let _ = s
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |w| {
                Some((w & !TOGGLE).wrapping_add(EPOCH_ONE))
            });
    }
    super::set_errno(e);
    r
}

/// The toggle epoch of `fd` (0 if none ever ran); odd while one runs.
#[inline]
pub(super) fn epoch(fd: c_int) -> u32 {
    slot(fd).map_or(0, |s| s.word.load(Ordering::Acquire) >> 4)
}

/// Off a fiber, after `accept`/`connect` on `fd` said `EAGAIN`: did a fiber's
/// toggle (which only runs on blocking sockets) overlap the call, whose epoch
/// before was `before`? Then the `EAGAIN` is not the user's: the caller waits
/// in `poll(2)` and retries. A genuine `EAGAIN` (nonblocking socket, expired
/// `SO_RCVTIMEO`) has an even, unchanged epoch.
pub(super) fn toggled_during(fd: c_int, before: u32) -> bool {
    before & 1 == 1 || epoch(fd) != before
}
