//! Stack-overflow reports: a guard-page fault on a fiber's stack becomes
//! `fiber '<name>' (id N) has overflowed its stack of K KiB` and an abort,
//! as std does for threads.
//!
//! A process-wide SIGSEGV/SIGBUS handler ([`install_overflow_handler`]) runs
//! on a per-thread alternate signal stack ([`ensure_altstack`]). Around each
//! resume the worker publishes the fiber's [`OverflowInfo`] in a
//! const-initialized thread-local ([`set_current_fiber`]). A fault inside
//! that fiber's guard range prints `fiber '<name>' (id N) has overflowed its
//! stack of K KiB` with `write(2)` and aborts; any other fault is chained to
//! the previous action (std's thread overflow handler, or the default). Only
//! the guard counts: below it lies another fiber's stack. Rust emits stack
//! probes, so a frame that crosses the limit touches the guard first.
//!
//! Everything the handler touches is async-signal-safe: the const-initialized
//! thread-local `CURRENT_FIBER` (no lazy init, no destructor), the
//! `OverflowInfo` it points to (plain data, written before the fiber runs),
//! atomics, and `write(2)`/`sigaction`/`abort`. That is why this per-thread
//! slot is not part of the runtime's `context`: nothing the handler reaches
//! may live behind another module.

use std::cell::Cell;
use std::io;
use std::ptr;
use std::sync::atomic::{compiler_fence, AtomicI32, AtomicUsize, Ordering::*};
use std::sync::Once;

use libc::{c_int, c_void, siginfo_t, stack_t};

use super::{install_guard, map_anon, page_size, FiberStack, StackGuard, ALTSTACK_SIZE};

/// What the overflow handler needs to know about the fiber running on this
/// thread. Lives in the fiber's header (a stable address); the worker
/// publishes it with [`set_current_fiber`] around each resume.
#[repr(C)]
pub(crate) struct OverflowInfo {
    /// Lowest address of the guard range.
    pub guard_lo: usize,
    /// End (exclusive) of the guard range.
    pub guard_hi: usize,
    /// Usable stack bytes (reported in KiB).
    pub stack_size: usize,
    /// The fiber's id.
    pub id: u64,
    /// UTF-8 bytes of the fiber's name, or null when unnamed.
    pub name_ptr: *const u8,
    /// Length of the name in bytes.
    pub name_len: usize,
}

// SAFETY: plain data; `name_ptr` points to immutable bytes and is dereferenced
// only by the overflow handler, on the thread that published this value, while
// it is published (see `set_current_fiber`).
unsafe impl Send for OverflowInfo {}
// SAFETY: as for Send; nothing is written through a shared reference.
unsafe impl Sync for OverflowInfo {}

impl OverflowInfo {
    /// Describes a fiber on `stack`. `name` must outlive each publication.
    pub(crate) fn new(stack: &FiberStack, id: u64, name: Option<&str>) -> OverflowInfo {
        let (guard_lo, guard_hi) = stack.guard_range();
        let (name_ptr, name_len) = name.map_or((ptr::null(), 0), |n| (n.as_ptr(), n.len()));
        OverflowInfo {
            guard_lo,
            guard_hi,
            stack_size: stack.size(),
            id,
            name_ptr,
            name_len,
        }
    }
}

thread_local! {
    /// The fiber running on this thread. Const-initialized, no destructor:
    /// readable from a signal handler.
    static CURRENT_FIBER: Cell<*const OverflowInfo> = const { Cell::new(ptr::null()) };
}

/// Publishes the fiber about to run on this thread (null: none).
///
/// # Safety
///
/// Unless null, `info` (and its name) must stay valid until this thread
/// publishes another pointer or calls [`clear_current_fiber`]: the overflow
/// handler may read it at any moment.
pub(crate) unsafe fn set_current_fiber(info: *const OverflowInfo) {
    CURRENT_FIBER.with(|c| c.set(info));
    // Keep the store before the stack switch that follows.
    compiler_fence(SeqCst);
}

/// Unpublishes the current fiber (after it suspends or ends).
pub(crate) fn clear_current_fiber() {
    compiler_fence(SeqCst);
    CURRENT_FIBER.with(|c| c.set(ptr::null()));
}

/// A three-argument (`SA_SIGINFO`) signal handler.
type SigInfoHandler = extern "C" fn(c_int, *mut siginfo_t, *mut c_void);

/// Handlers (`sa_sigaction`) found before ours, `[SIGSEGV, SIGBUS]`; `usize::MAX` until saved.
static PREV_HANDLER: [AtomicUsize; 2] = [const { AtomicUsize::new(usize::MAX) }; 2];
/// Their `sa_flags` (stored first; the Release store of the handler publishes them).
static PREV_FLAGS: [AtomicI32; 2] = [const { AtomicI32::new(0) }; 2];

/// Index of a signal in `PREV_HANDLER` and `PREV_FLAGS`.
fn slot_of(sig: c_int) -> usize {
    usize::from(sig == libc::SIGBUS)
}

/// Installs the process-wide SIGSEGV/SIGBUS overflow handler (idempotent),
/// saving the previous actions to chain to.
///
/// Flags are `SA_SIGINFO | SA_ONSTACK`: on the alternate stack because an
/// overflowed fiber has no stack left; no `SA_NODEFER`, so a fault inside the
/// handler (or a chained one) gets the default action at once instead of
/// recursing on the small alternate stack. Each thread that runs fibers must
/// also call [`ensure_altstack`].
pub(crate) fn install_overflow_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for sig in [libc::SIGSEGV, libc::SIGBUS] {
            // SAFETY: an all-zero sigaction is a valid value to fill in.
            let (mut old, mut new): (libc::sigaction, libc::sigaction) =
                unsafe { std::mem::zeroed() };
            new.sa_sigaction = overflow_handler as SigInfoHandler as usize;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            // SAFETY: reads the current action, then installs ours, which is
            // async-signal-safe and chains to the saved one.
            let rc = unsafe {
                libc::sigemptyset(&mut new.sa_mask);
                if libc::sigaction(sig, ptr::null(), &mut old) == 0 {
                    PREV_FLAGS[slot_of(sig)].store(old.sa_flags, Relaxed);
                    PREV_HANDLER[slot_of(sig)].store(old.sa_sigaction, Release);
                    libc::sigaction(sig, &new, ptr::null_mut())
                } else {
                    -1
                }
            };
            if rc != 0 {
                let e = io::Error::last_os_error();
                log::warn!("threadlet: no stack overflow handler: {e}");
            }
        }
    });
}

/// The SIGSEGV/SIGBUS handler: reports a fiber overflow, or chains on.
extern "C" fn overflow_handler(sig: c_int, info: *mut siginfo_t, ctx: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    let current = CURRENT_FIBER.with(Cell::get);
    // si_code > 0: a fault, not a signal sent with kill().
    if code > 0 && !current.is_null() {
        // SAFETY: a published pointer is valid (`set_current_fiber`'s contract),
        // and a fault is delivered to the thread that caused it.
        let fiber = unsafe { &*current };
        if (fiber.guard_lo..fiber.guard_hi).contains(&addr) {
            let name = match fiber.name_ptr.is_null() {
                true => &[][..],
                // SAFETY: the published name is valid (same contract).
                false => unsafe { std::slice::from_raw_parts(fiber.name_ptr, fiber.name_len) },
            };
            let mut msg = MsgBuf {
                buf: [0; 512],
                len: 0,
            };
            format_overflow(&mut msg, name, fiber.id, fiber.stack_size);
            write_stderr(&msg.buf[..msg.len]);
            // SAFETY: abort is async-signal-safe and does not return.
            unsafe { libc::abort() };
        }
    }
    // SAFETY: we are the handler for `sig`, passing on the kernel's arguments.
    unsafe { chain(sig, info, ctx) };
}

/// Passes a signal on to the action installed before ours.
///
/// # Safety
///
/// Only from a handler for `sig`, with the arguments it received.
unsafe fn chain(sig: c_int, info: *mut siginfo_t, ctx: *mut c_void) {
    let handler = PREV_HANDLER[slot_of(sig)].load(Acquire);
    let flags = PREV_FLAGS[slot_of(sig)].load(Relaxed);
    if handler == usize::MAX {
        return; // not saved: cannot happen once our handler is installed
    }
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Restore it and return: the faulting instruction runs again under the
        // original disposition. A sent signal is re-raised (blocked until we return).
        // SAFETY: an all-zero sigaction is valid; sigaction and raise are
        // async-signal-safe; `info` is the kernel's.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler;
            action.sa_flags = flags;
            libc::sigaction(sig, &action, ptr::null_mut());
            if (*info).si_code <= 0 {
                libc::raise(sig);
            }
        }
    } else if flags & libc::SA_SIGINFO != 0 {
        // SAFETY: an SA_SIGINFO action holds a three-argument handler.
        let f: SigInfoHandler = unsafe { std::mem::transmute(handler) };
        f(sig, info, ctx);
    } else {
        // SAFETY: any other action holds a one-argument handler.
        let f: extern "C" fn(c_int) = unsafe { std::mem::transmute(handler) };
        f(sig);
    }
}

/// A fixed-size message buffer: no allocation, usable in a signal handler.
struct MsgBuf {
    /// The message, then unused space.
    buf: [u8; 512],
    /// Bytes used.
    len: usize,
}

impl MsgBuf {
    /// Appends as much of `bytes` as fits.
    fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    /// Appends `n` in decimal.
    fn push_u64(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break self.push(&digits[i..]);
            }
        }
    }
}

/// Writes `\nfiber '<name>' (id N) has overflowed its stack of K KiB\n`
/// (an empty name reads `<unnamed>`; a long one is cut).
fn format_overflow(msg: &mut MsgBuf, name: &[u8], id: u64, stack_size: usize) {
    const NAME_MAX: usize = 200;
    msg.push(b"\nfiber '");
    match name.len() {
        0 => msg.push(b"<unnamed>"),
        n if n > NAME_MAX => {
            msg.push(&name[..NAME_MAX]);
            msg.push(b"...");
        }
        _ => msg.push(name),
    }
    msg.push(b"' (id ");
    msg.push_u64(id);
    msg.push(b") has overflowed its stack of ");
    msg.push_u64((stack_size / 1024) as u64);
    msg.push(b" KiB\n");
}

/// Writes all of `bytes` to stderr with `write(2)` only (async-signal-safe).
fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writes from a valid buffer.
        let n = unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// This thread's alternate signal stack, when [`ensure_altstack`] mapped one.
struct AltStack {
    /// Start of the mapping (guard page first), or 0.
    map: Cell<usize>,
    /// Whether this thread was already checked.
    checked: Cell<bool>,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let map = self.map.get();
        if map == 0 {
            return;
        }
        // SAFETY: an all-zero stack_t is valid for sigaltstack to fill in.
        let mut cur: stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: queries this thread's alternate stack.
        let ok = unsafe { libc::sigaltstack(ptr::null(), &mut cur) } == 0;
        if !ok || cur.ss_flags & libc::SS_ONSTACK != 0 {
            return; // running on it (cannot happen in a TLS destructor): leak it
        }
        if cur.ss_flags & libc::SS_DISABLE == 0 && cur.ss_sp as usize == map + page_size() {
            let off = stack_t {
                ss_sp: ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            // SAFETY: disables this thread's alternate stack, which we are not on.
            if unsafe { libc::sigaltstack(&off, ptr::null_mut()) } != 0 {
                return;
            }
        }
        // SAFETY: our own mapping, no longer this thread's alternate stack.
        unsafe { libc::munmap(map as *mut c_void, page_size() + ALTSTACK_SIZE) };
    }
}

thread_local! {
    /// The alternate signal stack this thread mapped; unmapped at thread exit.
    static ALT_STACK: AltStack = const { AltStack { map: Cell::new(0), checked: Cell::new(false) } };
}

/// Maps a guarded alternate signal stack and installs it for this thread.
fn install_altstack() -> io::Result<usize> {
    let page = page_size();
    let map = map_anon(page + ALTSTACK_SIZE)?;
    let new = stack_t {
        ss_sp: (map + page) as *mut c_void,
        ss_flags: 0,
        ss_size: ALTSTACK_SIZE,
    };
    // SAFETY: the guard is the first page of our fresh mapping; the rest stays
    // mapped (as this thread's alternate stack) until the thread exits.
    let rc = StackGuard::Auto
        .resolve()
        .and_then(|kind| unsafe { install_guard(kind, map, page) });
    // SAFETY: (as above) `new` describes valid memory that nothing else uses.
    let rc = rc.and_then(
        |()| match unsafe { libc::sigaltstack(&new, ptr::null_mut()) } {
            0 => Ok(map),
            _ => Err(io::Error::last_os_error()),
        },
    );
    if rc.is_err() {
        // SAFETY: our own mapping, not installed anywhere.
        unsafe { libc::munmap(map as *mut c_void, page + ALTSTACK_SIZE) };
    }
    rc
}

/// Makes sure this thread has an alternate signal stack (idempotent, cheap
/// after the first call): keeps an enabled one of at least `SIGSTKSZ` bytes
/// (std gives its threads one), else maps 64 KiB plus a guard page, unmapped
/// at thread exit.
pub(crate) fn ensure_altstack() {
    let _ = ALT_STACK.try_with(|alt| {
        if alt.checked.replace(true) {
            return;
        }
        // SAFETY: an all-zero stack_t is valid for sigaltstack to fill in.
        let mut cur: stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: queries this thread's alternate stack.
        let ok = unsafe { libc::sigaltstack(ptr::null(), &mut cur) } == 0;
        if ok && cur.ss_flags & libc::SS_DISABLE == 0 && cur.ss_size >= libc::SIGSTKSZ {
            return;
        }
        match install_altstack() {
            Ok(map) => alt.map.set(map),
            Err(e) => {
                log::warn!("threadlet: no alternate signal stack, overflows go unreported: {e}")
            }
        }
    });
}
