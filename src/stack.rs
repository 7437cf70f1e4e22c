//! Fiber stacks: allocation, guard pages, reuse, and stack-overflow reports.
//!
//! # Layout
//!
//! Default-size stacks are carved out of *slabs*. A slab is one anonymous
//! mapping (`PROT_READ|PROT_WRITE`, `MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE`,
//! then `MADV_NOHUGEPAGE`) of `n` equal slots, lowest address first:
//!
//! ```text
//! | guard | usable stack 0 | guard | usable stack 1 | ... | guard | usable stack n-1 |
//! ^ slab start            ^ base of stack 0 (a stack grows down towards its guard)
//! ```
//!
//! The guard of slot `i` lies just below stack `i` and just above the *top*
//! of stack `i - 1`. It is made with `madvise(MADV_GUARD_INSTALL)` (Linux
//! 6.13+; the slab stays one mapping) or, as a fallback, `mprotect(PROT_NONE)`
//! (two mappings per stack: the default `vm.max_map_count` of 65530 caps a
//! process near 32k stacks, and reaching it is an `io::Error`, never a
//! crash). Slabs grow from 16 to 1024 stacks (at most [`SLAB_MAX_BYTES`]), so
//! a million default stacks cost about a thousand mappings (fewer: adjacent
//! slabs merge). Other sizes get a dedicated `[guard | usable]` mapping,
//! unmapped when the stack drops. Nothing here writes to a stack: a fresh
//! stack costs only the pages its fiber touches.
//!
//! # States of a slab stack, and who may touch it
//!
//! 1. *Shared free list* (`StackPool::shared`, a mutex-protected `Vec`): any
//!    thread may take it, under the lock.
//! 2. *A worker's [`StackCache`]*: only that worker touches it. The hot path
//!    (alloc/free hitting the cache) is a `Vec` pop/push: no lock, atomic or
//!    syscall.
//! 3. *In use*: owned by value by a coroutine; only the fiber running on it
//!    touches its memory.
//!
//! A new slab puts its stacks in state 1 (a batch straight into the caller's
//! cache); an empty cache refills a batch from state 1; a full cache spills
//! its older half to state 1, first giving back each stack's pages below the
//! top 16 KiB with `MADV_DONTNEED` (the top stays warm). A [`FiberStack`] is
//! always owned by value, so its owner *is* its state: no flag to get wrong.
//! An idle worker gives the pages of stacks nobody used lately back to the
//! kernel and unmaps wholly free slabs (`stack/trim.rs`).
//!
//! # Lifetime of a slab
//!
//! Each slab stack holds an `Arc` to its slab, which is unmapped when the
//! last `Arc` drops. So dropping a stack anywhere (a cache dropped without
//! [`StackCache::drain_into`], a pool dropped before its fibers) is safe: at
//! worst the slot is not reused. Once the pool and all its stacks are gone,
//! so are all its mappings. Moving a stack between states moves its `Arc`
//! without touching the count.
//!
//! # Overflow detection
//!
//! A guard-page fault becomes a report naming the fiber: `stack/overflow.rs`.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::num::NonZeroUsize;
use std::ptr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard};

use corosensei::stack::{Stack, StackPointer};
use libc::{c_int, c_void};

// Paths relative to this file, so that `tests/stack_overflow.rs` (which
// compiles this file as its own module) finds it too.
#[path = "stack/overflow.rs"]
mod overflow;
#[path = "stack/trim.rs"]
mod trim;

pub(crate) use overflow::{
    clear_current_fiber, ensure_altstack, install_overflow_handler, set_current_fiber, OverflowInfo,
};

/// Usable bytes of a fiber stack unless the runtime or the fiber asks otherwise.
pub(crate) const DEFAULT_STACK_SIZE: usize = 256 * 1024;
/// Smallest usable stack; smaller requests are rounded up to this.
pub(crate) const MIN_STACK_SIZE: usize = 16 * 1024;
/// Largest usable stack; larger requests are an `InvalidInput` error.
pub(crate) const MAX_STACK_SIZE: usize = 1 << 30;

/// `MADV_GUARD_INSTALL` (Linux 6.13): accesses fault; the mapping is not split.
const MADV_GUARD_INSTALL: c_int = 102;
/// Guard bytes below each stack (whole pages). Guards cost neither memory nor
/// mappings; a wide one also catches C frames that skip a page unprobed.
const GUARD_BYTES: usize = 16 * 1024;
/// Bytes at the top of a spilled stack that stay resident.
const WARM_BYTES: usize = 16 * 1024;
/// Stacks a cache holds before it spills half to the shared list.
const CACHE_CAPACITY: usize = 128;
/// Stacks an empty cache takes from the shared list (or a new slab) at once.
const REFILL_BATCH: usize = 32;
/// Stacks in a pool's first slab; each next slab doubles, up to the max.
const FIRST_SLAB_STACKS: usize = 16;
/// Most stacks in one slab.
const MAX_SLAB_STACKS: usize = 1024;
/// Most bytes in one slab (large default sizes get fewer stacks per slab).
const SLAB_MAX_BYTES: usize = 512 << 20;
/// Past this many shared free stacks, spilled stacks give back all their
/// pages. The count includes never-touched stacks of fresh slabs (up to
/// 1024 per slab), so it must sit well above that or every spill in a burst
/// would strip the hot top pages and each reuse would fault them back in.
/// Idle memory kept warm is bounded by this times `WARM_BYTES` (256 MiB),
/// and all of it goes back at runtime shutdown.
const SHARED_WARM_LIMIT: usize = 16 * 1024;
/// Usable bytes of an alternate signal stack mapped by [`ensure_altstack`].
const ALTSTACK_SIZE: usize = 64 * 1024;

/// How the guard pages below fiber stacks are made (they turn a stack
/// overflow into a reported abort instead of memory corruption).
///
/// With `mprotect` each fiber stack costs two memory mappings, so the default
/// `vm.max_map_count` (65530) caps a process near 32k fibers; with
/// `MADV_GUARD_INSTALL` (Linux 6.13+) stacks share mappings and there is no cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StackGuard {
    /// `MADV_GUARD_INSTALL` where the kernel supports it, else `mprotect`.
    #[default]
    Auto,
    /// Require `MADV_GUARD_INSTALL` (Linux 6.13+); allocation fails without it.
    Madvise,
    /// Always `mprotect(PROT_NONE)`: two mappings per stack.
    Mprotect,
}

impl StackGuard {
    /// The mechanism to use (`Madvise` or `Mprotect`, never `Auto`).
    fn resolve(self) -> io::Result<StackGuard> {
        match self {
            StackGuard::Mprotect => Ok(StackGuard::Mprotect),
            _ if madvise_guards_supported() => Ok(StackGuard::Madvise),
            StackGuard::Auto => Ok(StackGuard::Mprotect),
            StackGuard::Madvise => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "threadlet: StackGuard::Madvise needs MADV_GUARD_INSTALL (Linux 6.13+), which \
                 this kernel refused; use StackGuard::Auto to fall back to mprotect guards",
            )),
        }
    }
}

/// The system page size.
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions (glibc answers from the aux vector).
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).unwrap_or(4096)
}

/// Rounds `n` (at most a few GiB) up to whole pages.
fn page_round(n: usize) -> usize {
    let page = page_size();
    (n + page - 1) & !(page - 1)
}

/// Whether `MADV_GUARD_INSTALL` works here: probed once, cached in an atomic.
fn madvise_guards_supported() -> bool {
    /// 0: not probed yet, 1: supported, 2: not supported.
    static STATE: AtomicU8 = AtomicU8::new(0);
    match STATE.load(Relaxed) {
        0 => {}
        state => return state == 1,
    }
    let page = page_size();
    let Ok(addr) = map_anon(2 * page) else {
        return false; // out of mappings right now: don't cache a guess
    };
    // SAFETY: the first page of the private mapping just created, which nothing uses.
    let ok = unsafe { libc::madvise(addr as *mut c_void, page, MADV_GUARD_INSTALL) } == 0;
    // SAFETY: unmaps exactly that mapping; nothing refers to it.
    unsafe { libc::munmap(addr as *mut c_void, 2 * page) };
    STATE.store(if ok { 1 } else { 2 }, Relaxed);
    ok
}

/// Maps `len` bytes of fresh, untouched, read-write anonymous memory.
fn map_anon(len: usize) -> io::Result<usize> {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    // SAFETY: a new mapping at an address the kernel picks aliases nothing.
    let addr = unsafe { libc::mmap(ptr::null_mut(), len, prot, flags, -1, 0) };
    if addr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // Best effort (fails harmlessly without THP): a fiber must not pin a huge page.
    // SAFETY: advice on the mapping just created; it changes no contents.
    unsafe { libc::madvise(addr, len, libc::MADV_NOHUGEPAGE) };
    Ok(addr as usize)
}

/// Makes `[addr, addr + len)` fault on any access, with a resolved `kind`.
///
/// # Safety
///
/// The range must be page aligned, inside a mapping the caller owns, and hold
/// nothing anyone will access again.
unsafe fn install_guard(kind: StackGuard, addr: usize, len: usize) -> io::Result<()> {
    let addr = addr as *mut c_void;
    // SAFETY: the caller guarantees the range is its own and unused.
    let rc = unsafe {
        match kind {
            StackGuard::Mprotect => libc::mprotect(addr, len, libc::PROT_NONE),
            _ => libc::madvise(addr, len, MADV_GUARD_INSTALL),
        }
    };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Reads `/proc/sys/vm/max_map_count` (into a stack buffer: no new mapping).
fn read_max_map_count() -> Option<u64> {
    let mut buf = [0u8; 32];
    let mut file = std::fs::File::open("/proc/sys/vm/max_map_count").ok()?;
    let n = file.read(&mut buf).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}

/// Turns a failed mmap/mprotect/madvise into an error naming the cause and the fix.
fn mapping_error(what: &str, err: io::Error, kind: StackGuard) -> io::Error {
    if err.raw_os_error() != Some(libc::ENOMEM) {
        let msg = format!("threadlet: could not {what} a fiber stack: {err}");
        return io::Error::new(err.kind(), msg);
    }
    let limit = read_max_map_count().map_or_else(|| "unknown".into(), |n| n.to_string());
    let cost = match kind {
        StackGuard::Mprotect => "each stack costs 2 mappings with mprotect guard pages",
        _ => "stacks share mappings with madvise guard pages",
    };
    let msg = format!(
        "threadlet: could not {what} a fiber stack: the process ran out of memory mappings \
         (vm.max_map_count is {limit}; {cost}) or of address space. Fix: raise the limit \
         (sysctl -w vm.max_map_count=1048576), or use fewer or smaller fiber stacks"
    );
    io::Error::new(io::ErrorKind::OutOfMemory, msg)
}

/// Rounds a requested size up to whole pages, clamps sizes below
/// [`MIN_STACK_SIZE`] up to it, and rejects sizes above [`MAX_STACK_SIZE`]
/// with `InvalidInput` and a message naming the limit and the fix.
pub(crate) fn normalize_stack_size(bytes: usize) -> io::Result<usize> {
    if bytes > MAX_STACK_SIZE {
        let msg = format!(
            "threadlet: a fiber stack of {bytes} bytes exceeds the maximum of {} MiB; ask for \
             a smaller stack and keep large buffers on the heap (Box, Vec) instead",
            MAX_STACK_SIZE >> 20
        );
        return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
    }
    Ok(page_round(bytes.max(MIN_STACK_SIZE)))
}

/// A mapping holding many stacks, unmapped when its last stack drops.
struct Slab {
    /// Start of the mapping.
    addr: usize,
    /// Length of the mapping.
    len: usize,
}

impl Drop for Slab {
    fn drop(&mut self) {
        // SAFETY: our mapping; each of its stacks held an Arc to this slab, so
        // none is in use or cached any more.
        unsafe { libc::munmap(self.addr as *mut c_void, self.len) };
    }
}

/// One fiber stack: usable memory `[guard_hi, base)`, guard `[limit, guard_hi)`.
pub(crate) struct FiberStack {
    /// Lowest guard address: corosensei's `limit()`.
    limit: NonZeroUsize,
    /// End of the guard, start of the usable range.
    guard_hi: usize,
    /// Top of the stack (exclusive, page aligned).
    base: NonZeroUsize,
    /// The slab holding this stack; `None`: a dedicated mapping `[limit, base)`.
    slab: Option<Arc<Slab>>,
    /// A fiber has run on it since it was mapped or last fully released:
    /// its top pages are likely resident ("warm").
    touched: bool,
}

// SAFETY: `[guard_hi, base)` is read-write, at least MIN_STACK_SIZE bytes
// (more than corosensei's 4096), page aligned (so 16-byte aligned), with a
// guard directly below; it stays mapped while this value lives (the slab Arc
// or the dedicated mapping is released only in Drop). `limit()` includes the
// guard, as the trait asks.
unsafe impl Stack for FiberStack {
    fn base(&self) -> StackPointer {
        self.base
    }

    fn limit(&self) -> StackPointer {
        self.limit
    }
}

impl FiberStack {
    /// The stack whose guard starts at `lo` (not 0).
    fn at(lo: usize, guard: usize, size: usize, slab: Option<Arc<Slab>>) -> FiberStack {
        let limit = NonZeroUsize::new(lo).expect("mmap never returns address 0");
        FiberStack {
            limit,
            guard_hi: lo + guard,
            base: limit.saturating_add(guard + size),
            slab,
            touched: false,
        }
    }

    /// Usable bytes (excluding the guard).
    pub(crate) fn size(&self) -> usize {
        self.base.get() - self.guard_hi
    }

    /// `[lo, hi)` of the guard page(s) just below the usable range.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        (self.limit.get(), self.guard_hi)
    }

    /// Gives back the usable pages except the top `keep` bytes.
    fn release_pages(&mut self, keep: usize) {
        // No fiber ever ran on it: nothing is resident, no syscall needed
        // (stacks traded away by `StackPool::bind` are spilled this way).
        if !self.touched {
            return;
        }
        if keep == 0 {
            self.touched = false;
        }
        if let Some(len) = self.size().checked_sub(keep).filter(|&len| len > 0) {
            let lo = self.guard_hi;
            // Most fibers never touch the deep part of their stack. A stack
            // grows down one page at a time (stack probes touch every page),
            // so a fiber that went below the kept top touched the page just
            // under it: ask the kernel about that one page (mincore is a
            // read-only page-table walk) and skip the MADV_DONTNEED — and the
            // faults it would cause on reuse — when it is not resident.
            if keep > 0 && !page_resident(lo + len - page_size()) {
                return;
            }
            // SAFETY: usable memory of this stack, owned by value (nobody runs
            // on it); on private anonymous memory this only zero-fills it.
            unsafe { libc::madvise(lo as *mut c_void, len, libc::MADV_DONTNEED) };
        }
    }
}

/// Is the page at `addr` (page-aligned, mapped) resident? Errors count as
/// resident, so the caller errs on the side of releasing memory.
fn page_resident(addr: usize) -> bool {
    let mut vec = [0u8; 1];
    // SAFETY: one page of a mapping this stack owns; `vec` has the one byte
    // mincore writes for it.
    let rc = unsafe { libc::mincore(addr as *mut c_void, page_size(), vec.as_mut_ptr()) };
    rc != 0 || vec[0] & 1 != 0
}

impl Drop for FiberStack {
    fn drop(&mut self) {
        if self.slab.is_none() {
            let lo = self.limit.get();
            // SAFETY: this value owns the dedicated mapping, and nobody runs on it
            // (a coroutine drops its stack only after it ends).
            unsafe { libc::munmap(lo as *mut c_void, self.base.get() - lo) };
        }
    }
}

/// Maps a dedicated `[guard | usable]` stack of `size` (normalized) bytes.
fn alloc_dedicated(size: usize, guard: StackGuard) -> io::Result<FiberStack> {
    let kind = guard.resolve()?;
    let g = page_round(GUARD_BYTES);
    let addr = map_anon(g + size).map_err(|e| mapping_error("map", e, kind))?;
    // Dropping `stack` on error unmaps it.
    let stack = FiberStack::at(addr, g, size, None);
    // SAFETY: the first `g` bytes of the mapping just created, which holds nothing.
    unsafe { install_guard(kind, addr, g) }.map_err(|e| mapping_error("guard", e, kind))?;
    Ok(stack)
}

/// Maps a slab of up to `count` stacks of `size` bytes; returns its stacks.
fn new_slab(size: usize, count: usize, guard: StackGuard) -> io::Result<Vec<FiberStack>> {
    let kind = guard.resolve()?;
    let g = page_round(GUARD_BYTES);
    let stride = g + size;
    let count = count.min(SLAB_MAX_BYTES / stride).max(1);
    let addr = map_anon(stride * count).map_err(|e| mapping_error("map", e, kind))?;
    // Dropping it unmaps the slab.
    let mut slab = Slab {
        addr,
        len: stride * count,
    };
    let mut guarded = 0;
    while guarded < count {
        // SAFETY: slot `guarded`'s guard, inside the new slab that nobody uses yet.
        match unsafe { install_guard(kind, addr + guarded * stride, g) } {
            Ok(()) => guarded += 1,
            Err(e) if guarded == 0 => return Err(mapping_error("guard", e, kind)),
            Err(e) => {
                // At the mapping limit (mprotect): keep the guarded stacks and
                // unmap the rest (cutting a mapping's tail needs no new one).
                log::debug!("threadlet: slab cut to {guarded} of {count} stacks: {e}");
                let keep = guarded * stride;
                // SAFETY: the unguarded tail of our own slab; nothing refers to it.
                if unsafe { libc::munmap((addr + keep) as *mut c_void, slab.len - keep) } == 0 {
                    slab.len = keep;
                }
                break;
            }
        }
    }
    let slab = Arc::new(slab);
    let stack = |i| FiberStack::at(addr + i * stride, g, size, Some(Arc::clone(&slab)));
    Ok((0..guarded).map(stack).collect())
}

/// The part of a pool shared by all threads.
struct Shared {
    /// Free default-size stacks; the most recently freed (warmest) last.
    free: Vec<FiberStack>,
    /// Free stacks with no resident pages, moved here from `free` by an idle
    /// worker's trim (`stack/trim.rs`); used when `free` is empty.
    cold: Vec<FiberStack>,
    /// `cold` changed since trim last looked for wholly free slabs in it.
    cold_unchecked: bool,
    /// Stacks in the next slab.
    next_slab_stacks: usize,
}

/// Per-runtime stack allocator. Owns the shared free list; a slab lives as
/// long as any of its stacks (see the module docs).
pub(crate) struct StackPool {
    /// Usable size of pooled stacks.
    default_size: usize,
    /// How guards are made.
    guard: StackGuard,
    /// Shared free list and slab growth.
    shared: Mutex<Shared>,
    /// `shared.free.len()`, readable without the lock (a hint).
    shared_len: AtomicUsize,
}

/// A worker's private cache of free default-size stacks (not shared between threads).
pub(crate) struct StackCache {
    /// Free stacks; the most recently freed (warmest) at the back, stacks
    /// traded away by [`StackPool::bind`] (untouched) at the front.
    stacks: VecDeque<FiberStack>,
    /// When to give memory back next (`stack/trim.rs`).
    trim: trim::TrimState,
}

impl StackCache {
    /// An empty cache (its fixed capacity is allocated once, here).
    pub(crate) fn new() -> StackCache {
        StackCache {
            stacks: VecDeque::with_capacity(CACHE_CAPACITY),
            trim: trim::TrimState::default(),
        }
    }

    /// Moves every cached stack to `pool`'s shared list: call it when a worker
    /// exits while its pool lives on, so the stacks get reused.
    pub(crate) fn drain_into(&mut self, pool: &StackPool) {
        self.stacks.retain(|s| s.size() == pool.default_size);
        pool.spill(self, self.stacks.len());
    }
}

impl StackPool {
    /// A pool of stacks of `default_size` bytes (already normalized).
    pub(crate) fn new(default_size: usize, guard: StackGuard) -> StackPool {
        let shared = Shared {
            free: Vec::new(),
            cold: Vec::new(),
            cold_unchecked: false,
            next_slab_stacks: FIRST_SLAB_STACKS,
        };
        StackPool {
            default_size,
            guard,
            shared: Mutex::new(shared),
            shared_len: AtomicUsize::new(0),
        }
    }

    /// Usable size of the pool's stacks.
    pub(crate) fn default_size(&self) -> usize {
        self.default_size
    }

    /// Locks the shared part (no panic can leave it inconsistent).
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A stack of `size` bytes (normalized). Default-size stacks come from
    /// `cache`, then the shared free list, then a new slab; other sizes get a
    /// dedicated mapping. Running out of mappings or address space is an
    /// `OutOfMemory` error that names `vm.max_map_count` and the fix.
    pub(crate) fn alloc(
        &self,
        size: usize,
        mut cache: Option<&mut StackCache>,
    ) -> io::Result<FiberStack> {
        if size != self.default_size {
            return alloc_dedicated(size, self.guard);
        }
        if let Some(stack) = cache.as_mut().and_then(|c| c.stacks.pop_back()) {
            return Ok(stack);
        }
        let count = {
            let mut shared = self.lock();
            let Shared { free, cold, .. } = &mut *shared;
            // Warm stacks first; trimmed (cold) ones before a new slab.
            let list = if free.is_empty() { cold } else { free };
            if let Some(stack) = list.pop() {
                if let Some(c) = cache {
                    let at = list.len().saturating_sub(REFILL_BATCH);
                    c.stacks.extend(list.drain(at..));
                }
                self.shared_len.store(shared.free.len(), Relaxed);
                return Ok(stack);
            }
            let count = shared.next_slab_stacks;
            shared.next_slab_stacks = (count * 2).min(MAX_SLAB_STACKS);
            count
        };
        // Map outside the lock; two threads racing here just make two slabs.
        let mut fresh = new_slab(self.default_size, count, self.guard)?;
        let stack = fresh.pop().expect("a slab holds at least one stack");
        if let Some(c) = cache {
            c.stacks
                .extend(fresh.drain(fresh.len().saturating_sub(REFILL_BATCH)..));
        }
        if !fresh.is_empty() {
            let mut shared = self.lock();
            shared.free.append(&mut fresh);
            self.shared_len.store(shared.free.len(), Relaxed);
        }
        Ok(stack)
    }

    /// Returns a stack. Default-size slab stacks go to `cache` (a full cache
    /// first spills its older half to the shared list); others are unmapped.
    pub(crate) fn free(&self, stack: FiberStack, cache: Option<&mut StackCache>) {
        if stack.slab.is_none() || stack.size() != self.default_size {
            return; // dropped: unmaps a dedicated mapping, or lets go of the slab
        }
        match cache {
            Some(c) => {
                if c.stacks.len() >= CACHE_CAPACITY {
                    self.spill(c, CACHE_CAPACITY / 2);
                }
                c.stacks.push_back(stack);
            }
            None => {
                let mut stack = stack;
                stack.release_pages(self.warm_bytes());
                let mut shared = self.lock();
                shared.free.push(stack);
                self.shared_len.store(shared.free.len(), Relaxed);
            }
        }
    }

    /// Bytes to keep resident at the top of a stack that joins the shared list.
    fn warm_bytes(&self) -> usize {
        match self.shared_len.load(Relaxed) < SHARED_WARM_LIMIT {
            true => page_round(WARM_BYTES),
            false => 0,
        }
    }

    /// Moves the `n` oldest stacks of `cache` to the shared list, giving back
    /// their pages first (outside the lock).
    fn spill(&self, cache: &mut StackCache, n: usize) {
        let n = n.min(cache.stacks.len());
        let keep = self.warm_bytes();
        cache
            .stacks
            .range_mut(..n)
            .for_each(|stack| stack.release_pages(keep));
        let mut shared = self.lock();
        shared.free.extend(cache.stacks.drain(..n));
        self.shared_len.store(shared.free.len(), Relaxed);
    }

    /// A fiber's first run: the stack it will run on. A stack reserved at
    /// spawn that no fiber has touched yet is traded for the warmest stack of
    /// the running worker's `cache`, and goes to the cache's cold end still
    /// untouched: fibers queued in bulk then never fault in fresh pages, and
    /// a stream of short fibers cycles through a few warm stacks.
    pub(crate) fn bind(&self, reserved: FiberStack, cache: &mut StackCache) -> FiberStack {
        let mut stack = reserved;
        let tradeable = !stack.touched && stack.slab.is_some() && stack.size() == self.default_size;
        if tradeable && cache.stacks.back().is_some_and(|s| s.touched) {
            let warm = cache.stacks.pop_back().expect("checked non-empty");
            cache.stacks.push_front(stack);
            stack = warm;
        }
        stack.touched = true;
        stack
    }

    /// Drops every stack on the shared list (runtime shutdown, after the
    /// workers drained their caches into it), so slabs with no stack in use
    /// are unmapped now rather than when the last handle to the runtime goes.
    pub(crate) fn release_free(&self) {
        let (free, cold) = {
            let mut shared = self.lock();
            (
                std::mem::take(&mut shared.free),
                std::mem::take(&mut shared.cold),
            )
        };
        self.shared_len.store(0, Relaxed);
        drop((free, cold));
    }
}
