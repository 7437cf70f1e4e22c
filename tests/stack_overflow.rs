//! Tests of the stack layer: pools, slabs and mappings, guard pages, and the
//! stack-overflow report (RELIABILITY.md rows 12, 13 and 19).
//!
//! `src/stack.rs` is a leaf module (it uses nothing else from the crate), so it
//! is compiled into this test crate as a module, which gives these tests its
//! `pub(crate)` API. Tests that crash on purpose, or that count the process's
//! mappings, run this binary again as a child process that runs only
//! `child_entry` in the role named by an environment variable.

#[path = "../src/stack.rs"]
#[allow(unreachable_pub)] // its `pub` items are the crate's public API
mod stack;

use corosensei::stack::Stack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use stack::*;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::Output;
use std::time::{Duration, Instant};

/// Environment variable that selects the role of a child process.
const CHILD_ENV: &str = "THREADLET_STACK_TEST_CHILD";

/// The system page size.
fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// Runs this test binary again, running only `child_entry` in `role`. A
/// child still running after two minutes is killed (a signal loop hangs).
fn run_child(role: &str) -> Output {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, role)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("child {role} hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!(
        "child {role}: {:?}\n--- stdout\n{stdout}--- stderr\n{stderr}---",
        out.status
    );
    out
}

/// Entry point of the child processes; does nothing in a normal test run.
#[test]
fn child_entry() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    match role.as_str() {
        "overflow-auto" => child_overflow(StackGuard::Auto, DEFAULT_STACK_SIZE, Some("deep"), 7),
        "overflow-mprotect" => {
            child_overflow(StackGuard::Mprotect, DEFAULT_STACK_SIZE, Some("deep"), 7)
        }
        "overflow-unnamed" => child_overflow(StackGuard::Auto, 64 * 1024, None, 9),
        "overflow-own-altstack" => child_overflow_own_altstack(),
        "bad-read" => child_bad_read(true),
        "bad-read-plain" => child_bad_read(false),
        "bad-read-dfl" => {
            // SAFETY: resets SIGSEGV to its default before our handler saves it.
            unsafe { libc::signal(libc::SIGSEGV, libc::SIG_DFL) };
            child_bad_read(true)
        }
        "raise-dfl" => {
            // SAFETY: resets SIGSEGV to its default before our handler saves it, then
            // sends it (not a fault: our handler must re-raise it).
            unsafe {
                libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                install_overflow_handler();
                libc::raise(libc::SIGSEGV);
            }
            println!("raise-dfl: survived");
        }
        "bad-read-onearg" => {
            // SAFETY: an all-zero sigaction is valid; installs a one-argument handler.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = one_arg_handler as extern "C" fn(libc::c_int) as usize;
                libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut());
            }
            child_bad_read(true)
        }
        "thread-overflow" => child_thread_overflow(),
        "map-cap" => child_map_cap(),
        "mappings-auto" => child_mappings(StackGuard::Auto),
        "mappings-mprotect" => child_mappings(StackGuard::Mprotect),
        "many-madvise" => child_many_madvise(),
        other => panic!("unknown child role {other}"),
    }
}

/// A previous, one-argument SIGSEGV handler that our handler must chain to.
extern "C" fn one_arg_handler(sig: libc::c_int) {
    let msg = b"one-arg handler called\n";
    // SAFETY: write and _exit are async-signal-safe.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(40 + sig);
    }
}

/// Recurses until the stack runs out (frames the optimizer cannot remove).
#[inline(never)]
fn recurse_forever(depth: u64) -> u64 {
    let buf = std::hint::black_box([depth as u8; 512]);
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    recurse_forever(depth + 1) + u64::from(buf[7])
}

/// Recurses until `base - sp >= bytes`; returns the depth reached in bytes.
#[inline(never)]
fn recurse_to(base: usize, bytes: usize) -> usize {
    let buf = std::hint::black_box([1u8; 1024]);
    let here = buf.as_ptr() as usize;
    if base - here >= bytes {
        return base - here;
    }
    recurse_to(base, bytes).max(usize::from(std::hint::black_box(buf)[3]))
}

/// Address ranges mapped in this process.
fn mapped_ranges() -> Vec<(usize, usize)> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let range = |l: &str| {
        let (lo, hi) = l
            .split_whitespace()
            .next()
            .unwrap()
            .split_once('-')
            .unwrap();
        (
            usize::from_str_radix(lo, 16).unwrap(),
            usize::from_str_radix(hi, 16).unwrap(),
        )
    };
    maps.lines().map(range).collect()
}

/// Whether any byte of `[lo, hi)` is mapped.
fn any_mapped(ranges: &[(usize, usize)], lo: usize, hi: usize) -> bool {
    ranges.iter().any(|&(a, b)| a < hi && lo < b)
}

/// Resident pages of `[lo, lo + len)` (page aligned, mapped).
fn resident_pages(lo: usize, len: usize) -> usize {
    let mut vec = vec![0u8; len / page()];
    // SAFETY: mincore reads page tables and fills `vec`, one byte per page.
    let rc = unsafe { libc::mincore(lo as *mut libc::c_void, len, vec.as_mut_ptr()) };
    assert_eq!(rc, 0, "{}", io::Error::last_os_error());
    vec.iter().filter(|&&b| b & 1 != 0).count()
}

/// Usable range `[lo, hi)` of a stack.
fn usable(stack: &FiberStack) -> (usize, usize) {
    (stack.guard_range().1, stack.base().get())
}

/// Writes a byte into every page of a stack's usable range.
fn touch_all(stack: &FiberStack) {
    let (lo, hi) = usable(stack);
    for addr in (lo..hi).step_by(page()) {
        // SAFETY: usable memory of a stack we own, that nobody runs on.
        unsafe { std::ptr::write_volatile(addr as *mut u8, 1) };
    }
}

/// Runs `f` in a coroutine on `stack` and returns its result and the stack.
fn run_on<R: 'static>(stack: FiberStack, f: impl FnOnce() -> R + 'static) -> (R, FiberStack) {
    let mut co = Coroutine::with_stack(stack, move |_: &Yielder<(), ()>, ()| f());
    match co.resume(()) {
        CoroutineResult::Return(r) => (r, co.into_stack()),
        CoroutineResult::Yield(()) => unreachable!(),
    }
}

/// Sizes are clamped up, rounded to pages, and bounded with a clear error.
#[test]
fn normalize() {
    assert_eq!(normalize_stack_size(0).unwrap(), MIN_STACK_SIZE);
    assert_eq!(
        normalize_stack_size(MIN_STACK_SIZE + 1).unwrap(),
        MIN_STACK_SIZE + page()
    );
    assert_eq!(
        normalize_stack_size(DEFAULT_STACK_SIZE).unwrap(),
        DEFAULT_STACK_SIZE
    );
    assert_eq!(
        normalize_stack_size(MAX_STACK_SIZE).unwrap(),
        MAX_STACK_SIZE
    );
    let err = normalize_stack_size(MAX_STACK_SIZE + 1).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("maximum of 1024 MiB"), "{err}");
}

/// The pool and its parts can be shared as the runtime needs.
#[test]
fn auto_traits() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<StackPool>();
    send_sync::<OverflowInfo>();
    send::<FiberStack>();
    send::<StackCache>();
}

/// A fresh stack is untouched; freed stacks come back LIFO through the cache and the shared list.
#[test]
fn alloc_free_reuse() {
    let pool = StackPool::new(DEFAULT_STACK_SIZE, StackGuard::Auto);
    assert_eq!(pool.default_size(), DEFAULT_STACK_SIZE);
    let mut cache = StackCache::new();
    let stack = pool.alloc(DEFAULT_STACK_SIZE, Some(&mut cache)).unwrap();
    let (lo, hi) = stack.guard_range();
    assert_eq!(stack.size(), DEFAULT_STACK_SIZE);
    assert_eq!(
        (stack.limit().get(), stack.base().get() - hi),
        (lo, DEFAULT_STACK_SIZE)
    );
    assert!(hi - lo >= page() && hi % page() == 0 && stack.base().get() % page() == 0);
    assert_eq!(
        resident_pages(hi, stack.size()),
        0,
        "a fresh stack must not be touched"
    );
    let base = stack.base();
    pool.free(stack, Some(&mut cache));
    let again = pool.alloc(DEFAULT_STACK_SIZE, Some(&mut cache)).unwrap();
    assert_eq!(again.base(), base, "the cache is LIFO");
    pool.free(again, None);
    assert_eq!(pool.alloc(DEFAULT_STACK_SIZE, None).unwrap().base(), base);
    // Other sizes get their own mapping.
    let small = pool.alloc(MIN_STACK_SIZE, Some(&mut cache)).unwrap();
    assert_eq!(small.size(), MIN_STACK_SIZE);
    touch_all(&small);
    pool.free(small, Some(&mut cache));
}

/// Stacks no fiber ever ran on are spilled without any syscall: nothing of
/// theirs is resident, and they stay that way.
#[test]
fn untouched_stacks_spill_untouched() {
    let pool = StackPool::new(DEFAULT_STACK_SIZE, StackGuard::Auto);
    let mut cache = StackCache::new();
    let stacks: Vec<_> = (0..129)
        .map(|_| pool.alloc(DEFAULT_STACK_SIZE, None).unwrap())
        .collect();
    let ranges: Vec<_> = stacks.iter().map(usable).collect();
    for stack in stacks {
        pool.free(stack, Some(&mut cache));
    }
    cache.drain_into(&pool);
    for (lo, hi) in ranges {
        assert_eq!(resident_pages(lo, hi - lo), 0);
    }
}

/// A fiber's first run trades its untouched reserved stack for the warmest
/// cached one, and the reserved stack waits at the cold end, untouched.
#[test]
fn bind_trades_cold_for_warm() {
    let pool = StackPool::new(DEFAULT_STACK_SIZE, StackGuard::Auto);
    let mut cache = StackCache::new();
    // A stack that has been run on, back in the cache (warm).
    let first = pool.alloc(DEFAULT_STACK_SIZE, Some(&mut cache)).unwrap();
    let warm = pool.bind(first, &mut cache);
    let warm_base = warm.base();
    pool.free(warm, Some(&mut cache));
    // A fresh reservation from the shared list / a new slab is untouched...
    let mut reserved = Vec::new();
    while reserved.len() < 64 {
        reserved.push(pool.alloc(DEFAULT_STACK_SIZE, None).unwrap());
    }
    let cold = reserved.pop().unwrap();
    let cold_base = cold.base();
    // ...so binding it hands out the warm stack instead.
    let bound = pool.bind(cold, &mut cache);
    assert_eq!(bound.base(), warm_base);
    // The traded stack waits in the cache, still untouched.
    let mut popped = Vec::new();
    let found = loop {
        let s = pool.alloc(DEFAULT_STACK_SIZE, Some(&mut cache)).unwrap();
        if s.base() == cold_base {
            break s;
        }
        popped.push(s);
        assert!(popped.len() < 1000, "traded stack not found in the cache");
    };
    assert_eq!(resident_pages(found.guard_range().1, found.size()), 0);
    pool.free(found, Some(&mut cache));
    pool.free(bound, Some(&mut cache));
    for r in reserved.into_iter().chain(popped) {
        pool.free(r, None);
    }
}

/// `release_free` (runtime shutdown) unmaps a slab once all its stacks are
/// back on the shared list, even though the pool itself lives on.
#[test]
fn release_free_unmaps_idle_slabs() {
    let pool = StackPool::new(DEFAULT_STACK_SIZE, StackGuard::Auto);
    let mut cache = StackCache::new();
    let stack = pool.alloc(DEFAULT_STACK_SIZE, Some(&mut cache)).unwrap();
    let (lo, hi) = (stack.limit().get(), stack.base().get());
    pool.free(stack, Some(&mut cache));
    cache.drain_into(&pool);
    assert!(any_mapped(&mapped_ranges(), lo, hi), "slab still cached");
    pool.release_free();
    assert!(!any_mapped(&mapped_ranges(), lo, hi), "slab not unmapped");
    // The pool still works afterwards.
    let again = pool.alloc(DEFAULT_STACK_SIZE, None).unwrap();
    pool.free(again, None);
}

/// Threads with their own caches share one pool: no stack is ever handed out twice.
#[test]
fn concurrent_alloc_free() {
    let pool = std::sync::Arc::new(StackPool::new(MIN_STACK_SIZE, StackGuard::Auto));
    let live = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (pool, live) = (pool.clone(), live.clone());
            std::thread::spawn(move || {
                let mut cache = StackCache::new();
                let mut held = Vec::new();
                for i in 0..20_000usize {
                    if (i * 7 + t) % 5 < 3 || held.is_empty() {
                        let stack = pool.alloc(MIN_STACK_SIZE, Some(&mut cache)).unwrap();
                        assert!(
                            live.lock().unwrap().insert(stack.base()),
                            "handed out twice"
                        );
                        held.push(stack);
                    } else {
                        let stack = held.swap_remove(i % held.len());
                        assert!(live.lock().unwrap().remove(&stack.base()));
                        pool.free(stack, if i % 3 == 0 { None } else { Some(&mut cache) });
                    }
                }
                for stack in held {
                    assert!(live.lock().unwrap().remove(&stack.base()));
                    pool.free(stack, Some(&mut cache));
                }
                cache.drain_into(&pool);
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
}

/// A full cache spills its older half, giving back all but the top 16 KiB.
#[test]
fn spill_releases_pages() {
    let pool = StackPool::new(DEFAULT_STACK_SIZE, StackGuard::Auto);
    let mut cache = StackCache::new();
    let stacks: Vec<_> = (0..129)
        .map(|_| pool.alloc(DEFAULT_STACK_SIZE, None).unwrap())
        .collect();
    let ranges: Vec<_> = stacks.iter().map(usable).collect();
    // Run on (bound, then used to the bottom) like a fiber's stack; binding
    // with an empty scratch cache keeps each stack as it is.
    for stack in stacks {
        let stack = pool.bind(stack, &mut StackCache::new());
        touch_all(&stack);
        pool.free(stack, Some(&mut cache));
    }
    let resident = |(lo, hi): (usize, usize)| resident_pages(lo, hi - lo);
    let warm = (16 * 1024usize).div_ceil(page());
    assert_eq!(
        resident(ranges[0]),
        warm,
        "spilled: only the top stays resident"
    );
    assert_eq!(resident(ranges[63]), warm);
    assert_eq!(
        resident(ranges[64]),
        DEFAULT_STACK_SIZE / page(),
        "still cached: untouched"
    );
    cache.drain_into(&pool);
    assert_eq!(resident(ranges[128]), warm);
    // The drained stacks are reused, warmest first.
    assert_eq!(
        usable(&pool.alloc(DEFAULT_STACK_SIZE, None).unwrap()),
        ranges[128]
    );
}

/// StackGuard::Madvise works exactly where the kernel accepts `MADV_GUARD_INSTALL` (102).
#[test]
fn madvise_mode() {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    // SAFETY: a fresh private mapping, probed and unmapped here (independently of the module).
    let kernel_ok = unsafe {
        let p = libc::mmap(std::ptr::null_mut(), page(), libc::PROT_READ, flags, -1, 0);
        assert_ne!(p, libc::MAP_FAILED);
        let ok = libc::madvise(p, page(), 102) == 0;
        libc::munmap(p, page());
        ok
    };
    let pool = StackPool::new(DEFAULT_STACK_SIZE, StackGuard::Madvise);
    match pool.alloc(DEFAULT_STACK_SIZE, None) {
        Ok(_) => assert!(kernel_ok),
        Err(e) => assert_eq!((e.kind(), kernel_ok), (io::ErrorKind::Unsupported, false)),
    }
}

/// A coroutine on a default stack can use 200 KiB of it, on both guard kinds.
#[test]
fn coroutine_uses_most_of_the_stack() {
    for guard in [StackGuard::Auto, StackGuard::Mprotect] {
        let pool = StackPool::new(DEFAULT_STACK_SIZE, guard);
        let mut cache = StackCache::new();
        for _ in 0..2 {
            let stack = pool.alloc(DEFAULT_STACK_SIZE, Some(&mut cache)).unwrap();
            let base = stack.base().get();
            let (depth, stack) = run_on(stack, move || recurse_to(base, 200 * 1024));
            assert!(depth >= 200 * 1024);
            pool.free(stack, Some(&mut cache));
        }
    }
}

/// Row 13: serde_json at depth 128, a deep `{:#?}` and `io::copy` fit a default stack.
#[test]
fn default_stack_fits_common_libraries() {
    install_overflow_handler();
    ensure_altstack();
    let pool = StackPool::new(DEFAULT_STACK_SIZE, StackGuard::Auto);
    let stack = pool.alloc(DEFAULT_STACK_SIZE, None).unwrap();
    let info = OverflowInfo::new(&stack, 13, Some("row-13"));
    // SAFETY: `info` outlives the coroutine run; cleared right after.
    unsafe { set_current_fiber(&info) };
    let (len, stack) = run_on(stack, || {
        let depth = 127; // serde_json's default limit is 128 levels
        let text = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&value).unwrap(), text);
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let debug = format!("{value:#?}");
        let mut sink = Vec::new();
        let copied = io::copy(&mut io::Cursor::new(vec![7u8; 1 << 20]), &mut sink).unwrap();
        assert_eq!(copied, 1 << 20);
        pretty.len() + debug.len()
    });
    clear_current_fiber();
    assert!(len > 0);
    pool.free(stack, None);
}

/// Child: a fiber recurses forever; expects the report, then SIGABRT.
fn child_overflow(guard: StackGuard, size: usize, name: Option<&'static str>, id: u64) {
    install_overflow_handler();
    install_overflow_handler();
    ensure_altstack();
    ensure_altstack();
    let pool = StackPool::new(DEFAULT_STACK_SIZE, guard);
    let stack = pool.alloc(size, None).unwrap();
    let info = OverflowInfo::new(&stack, id, name);
    // SAFETY: `info` lives until the process aborts.
    unsafe { set_current_fiber(&info) };
    run_on(stack, || recurse_forever(0));
    unreachable!("the overflow must abort");
}

/// Child: like `child_overflow`, on a thread whose alternate stack `ensure_altstack` maps.
fn child_overflow_own_altstack() {
    install_overflow_handler();
    let thread = std::thread::spawn(|| {
        let off = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: an all-zero stack_t is valid; disabling std's alternate stack is allowed.
        let mut cur: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above; `cur` is filled in by the kernel.
        unsafe { assert_eq!(libc::sigaltstack(&off, &mut cur), 0) };
        ensure_altstack();
        // SAFETY: as above.
        unsafe { assert_eq!(libc::sigaltstack(std::ptr::null(), &mut cur), 0) };
        assert_eq!((cur.ss_flags, cur.ss_size), (0, 64 * 1024));
        cur.ss_sp as usize
    });
    let sp = thread.join().unwrap();
    assert!(
        !any_mapped(&mapped_ranges(), sp, sp + 64 * 1024),
        "freed at thread exit"
    );
    let thread = std::thread::spawn(|| {
        let off = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: disables std's alternate stack for this thread.
        unsafe { assert_eq!(libc::sigaltstack(&off, std::ptr::null_mut()), 0) };
        child_overflow(
            StackGuard::Auto,
            DEFAULT_STACK_SIZE,
            Some("own altstack"),
            3,
        );
    });
    let _ = thread.join();
}

/// Child: a bad read outside any guard (with or without a fiber published); expects SIGSEGV.
fn child_bad_read(publish: bool) {
    install_overflow_handler();
    ensure_altstack();
    let pool = StackPool::new(DEFAULT_STACK_SIZE, StackGuard::Auto);
    let stack = pool.alloc(DEFAULT_STACK_SIZE, None).unwrap();
    let info = OverflowInfo::new(&stack, 1, None);
    if publish {
        // SAFETY: `info` lives until the process dies below.
        unsafe { set_current_fiber(&info) };
    }
    let addr = std::hint::black_box(8usize) as *const u64;
    // SAFETY: none: this read of the (never mapped) null page is meant to fault.
    let v = unsafe { std::ptr::read_volatile(addr) };
    println!("read {v}: unreachable");
}

/// Child: a plain thread overflows; std's report must still work behind ours.
fn child_thread_overflow() {
    install_overflow_handler();
    let builder = std::thread::Builder::new()
        .name("plain".into())
        .stack_size(128 * 1024);
    let _ = builder.spawn(|| recurse_forever(0)).unwrap().join();
}

/// Child: allocate mprotect-guarded stacks until the mapping limit.
fn child_map_cap() {
    let pool = StackPool::new(DEFAULT_STACK_SIZE, StackGuard::Mprotect);
    let mut held = Vec::with_capacity(70_000); // allocated before the cap is near
    let mut failure = None;
    for _ in 0..70_000 {
        match pool.alloc(DEFAULT_STACK_SIZE, None) {
            Ok(stack) => held.push(stack),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    match &failure {
        Some(e) => println!(
            "MAPCAP after {} stacks: kind={:?} msg={e}",
            held.len(),
            e.kind()
        ),
        None => println!("MAPCAP no error after {} stacks", held.len()),
    }
    drop(held);
    pool.alloc(DEFAULT_STACK_SIZE, None).unwrap();
    println!("MAPCAP recovered");
}

/// Child: 10,000 stacks cost few mappings (madvise), and none stays after the pool.
fn child_mappings(guard: StackGuard) {
    let mut held = Vec::with_capacity(10_000);
    let baseline = mapped_ranges().len();
    let pool = StackPool::new(DEFAULT_STACK_SIZE, guard);
    let mut cache = StackCache::new();
    for _ in 0..10_000 {
        held.push(pool.alloc(DEFAULT_STACK_SIZE, Some(&mut cache)).unwrap());
    }
    held.push(pool.alloc(64 * 1024, None).unwrap());
    let during = mapped_ranges().len();
    let madvise = StackPool::new(DEFAULT_STACK_SIZE, StackGuard::Madvise)
        .alloc(DEFAULT_STACK_SIZE, None)
        .is_ok();
    println!("guards: {}", if madvise { "madvise" } else { "mprotect" });
    println!("mappings: baseline {baseline}, with 10,000 stacks {during}");
    if guard == StackGuard::Auto && madvise {
        assert!(during - baseline < 100, "{during} - {baseline}");
    }
    let ranges: Vec<(usize, usize)> = held
        .iter()
        .map(|s| (s.guard_range().0, s.base().get()))
        .collect();
    // Some stacks end up in the cache, some in the shared list, some stay held.
    for stack in held.drain(5_000..) {
        pool.free(stack, Some(&mut cache));
    }
    // Stacks outlive their pool (held ones stay usable), and a cache may be dropped undrained.
    drop(pool);
    held.iter().take(3).for_each(touch_all);
    drop(cache);
    drop(held);
    let after = mapped_ranges();
    for &(lo, hi) in &ranges {
        assert!(
            !any_mapped(&after, lo, hi),
            "stack {lo:#x}..{hi:#x} still mapped"
        );
    }
    assert!(
        after.len() <= baseline,
        "{} mappings after, {baseline} before",
        after.len()
    );
}

/// Child: 100,000 madvise-guarded stacks at the default vm.max_map_count.
fn child_many_madvise() {
    let baseline = mapped_ranges().len();
    let pool = StackPool::new(DEFAULT_STACK_SIZE, StackGuard::Madvise);
    let mut held = Vec::with_capacity(100_000);
    for _ in 0..100_000 {
        match pool.alloc(DEFAULT_STACK_SIZE, None) {
            Ok(stack) => held.push(stack),
            Err(e) if e.kind() == io::ErrorKind::Unsupported && held.is_empty() => {
                return println!("SKIP: {e}");
            }
            Err(e) => panic!("stack {}: {e}", held.len()),
        }
    }
    let during = mapped_ranges().len();
    println!(
        "mappings: baseline {baseline}, with {} stacks {during}",
        held.len()
    );
    assert!(during - baseline < 1_000);
}

/// Row 12: infinite recursion in a fiber prints its name, id and size, then SIGABRT.
#[test]
fn fiber_overflow_is_reported() {
    let cases = [
        (
            "overflow-auto",
            "fiber 'deep' (id 7) has overflowed its stack of 256 KiB\n",
        ),
        (
            "overflow-mprotect",
            "fiber 'deep' (id 7) has overflowed its stack of 256 KiB\n",
        ),
        (
            "overflow-unnamed",
            "fiber '<unnamed>' (id 9) has overflowed its stack of 64 KiB\n",
        ),
        (
            "overflow-own-altstack",
            "fiber 'own altstack' (id 3) has overflowed its stack of 256 KiB\n",
        ),
    ];
    for (role, message) in cases {
        let out = run_child(role);
        assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{role}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(message),
            "{role}"
        );
    }
}

/// Row 12: any other fault still kills with SIGSEGV, without a fiber report.
#[test]
fn other_faults_still_segfault() {
    for role in ["bad-read", "bad-read-plain", "bad-read-dfl", "raise-dfl"] {
        let out = run_child(role);
        assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{role}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("overflowed"), "{role}");
    }
    let out = run_child("bad-read-onearg");
    assert_eq!(out.status.code(), Some(40 + libc::SIGSEGV));
    assert!(String::from_utf8_lossy(&out.stderr).contains("one-arg handler called"));
}

/// std's report of a thread overflow keeps working behind our handler.
#[test]
fn thread_overflow_still_reported_by_std() {
    let out = run_child("thread-overflow");
    assert_eq!(out.status.signal(), Some(libc::SIGABRT));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("thread 'plain'") && stderr.contains("has overflowed its stack"));
}

/// Row 19: on the mprotect path, vm.max_map_count is an error that names it, not a crash.
#[test]
fn map_count_cap_is_an_error() {
    let limit: u64 = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let out = run_child("map-cap");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("MAPCAP recovered"));
    if limit < 130_000 {
        assert!(stdout.contains("kind=OutOfMemory") && stdout.contains("vm.max_map_count is"));
        assert!(
            stdout.contains("sysctl -w vm.max_map_count=") && stdout.contains("fewer or smaller")
        );
    }
}

/// Rows 19, 20: slabs keep mappings few, and nothing stays mapped after the pool.
#[test]
fn mappings_are_few_and_released() {
    assert!(run_child("mappings-auto").status.success());
    assert!(run_child("mappings-mprotect").status.success());
}

/// Row 19: far more than 32k stacks at the default vm.max_map_count (madvise guards).
#[test]
fn many_madvise_stacks() {
    assert!(run_child("many-madvise").status.success());
}

/// RELIABILITY row 26: an idle worker's trim, armed by activity, gives back
/// the pages of all but the warmest cached stacks and of the shared list.
#[test]
fn idle_trim_gives_pages_back() {
    let pool = StackPool::new(DEFAULT_STACK_SIZE, StackGuard::Auto);
    let mut cache = StackCache::new();
    // 200 stacks used to the bottom: 128 end up cached, the rest spilled.
    let stacks: Vec<_> = (0..200)
        .map(|_| pool.alloc(DEFAULT_STACK_SIZE, None).unwrap())
        .collect();
    let ranges: Vec<_> = stacks.iter().map(usable).collect();
    for stack in stacks {
        let stack = pool.bind(stack, &mut StackCache::new());
        touch_all(&stack);
        pool.free(stack, Some(&mut cache));
    }
    // A slab the trim unmapped holds nothing resident.
    let resident = || -> usize {
        let maps = mapped_ranges();
        ranges
            .iter()
            .filter(|&&(lo, hi)| any_mapped(&maps, lo, hi))
            .map(|&(lo, hi)| resident_pages(lo, hi - lo))
            .sum()
    };
    let before = resident();
    let warm = (16 * 1024usize).div_ceil(page());
    assert!(before > 100 * warm, "{before} pages resident before");
    let t0 = Instant::now();
    // No activity since the cache was made: nothing armed, nothing done.
    assert_eq!(pool.trim(&mut cache, t0, 0, None), None);
    assert_eq!(resident(), before);
    // Activity arms a trim for later; the worker's wake-up moves to it.
    let later = t0 + Duration::from_secs(3600);
    let due = pool.trim(&mut cache, t0, 1, Some(later)).expect("armed");
    assert!(due > t0 && due < later);
    assert_eq!(pool.trim(&mut cache, t0, 1, None), Some(due), "not due yet");
    assert_eq!(resident(), before);
    // Due: rounds run until nothing is left, then it disarms.
    let mut now = due;
    let mut rounds = 0;
    while let Some(next) = pool.trim(&mut cache, now, 1, None) {
        assert!(next > now);
        now = next;
        rounds += 1;
        assert!(rounds < 100, "trim never finishes");
    }
    let after = resident();
    assert!(
        after <= 16 * warm,
        "{after} pages still resident, want at most the top {warm} of 16 stacks"
    );
    // The stacks are all still there to reuse.
    let again: Vec<_> = (0..200)
        .map(|_| pool.alloc(DEFAULT_STACK_SIZE, Some(&mut cache)).unwrap())
        .collect();
    drop(again);
}

/// Slabs whose stacks are all free are unmapped by a trim.
#[test]
fn idle_trim_unmaps_wholly_free_slabs() {
    let pool = StackPool::new(DEFAULT_STACK_SIZE, StackGuard::Auto);
    let mut cache = StackCache::new();
    let stacks: Vec<_> = (0..64)
        .map(|_| pool.alloc(DEFAULT_STACK_SIZE, None).unwrap())
        .collect();
    let ranges: Vec<_> = stacks
        .iter()
        .map(|s| (s.limit().get(), s.base().get()))
        .collect();
    // One stack stays in use: its slab must stay mapped.
    let mut stacks = stacks;
    let in_use = stacks.pop().unwrap();
    for stack in stacks {
        pool.free(stack, None);
    }
    let t0 = Instant::now();
    let mut now = pool
        .trim(&mut cache, t0, 1, None)
        .expect("activity arms a trim");
    while let Some(next) = pool.trim(&mut cache, now, 1, None) {
        now = next;
    }
    let maps = mapped_ranges();
    let (lo, hi) = (in_use.limit().get(), in_use.base().get());
    assert!(
        any_mapped(&maps, lo, hi),
        "the slab of a stack in use was unmapped"
    );
    let unmapped = ranges
        .iter()
        .filter(|&&(lo, hi)| !any_mapped(&maps, lo, hi))
        .count();
    assert!(unmapped > 0, "no wholly free slab was unmapped");
    pool.free(in_use, None);
    // The pool still works afterwards.
    let again = pool.alloc(DEFAULT_STACK_SIZE, None).unwrap();
    pool.free(again, None);
}
