//! RELIABILITY rows 1, 2, 7, 9, 10 and 13 for the core runtime.

mod common;

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;

use threadlet::{fiber, Runtime};

/// Row 1: 100k spawns from plain threads onto idle workers; each must run.
/// A lost wakeup would leave fibers unrun and this test hanging.
#[test]
fn row1_spawns_from_plain_threads_all_run() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let threads = 4;
    let per_thread = 25_000;
    let start = Arc::new(Barrier::new(threads));
    let producers: Vec<_> = (0..threads)
        .map(|_| {
            let (handle, ran, start) = (rt.handle(), ran.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let mut joins = Vec::with_capacity(per_thread);
                for i in 0..per_thread {
                    let ran = ran.clone();
                    joins.push(handle.spawn(move || {
                        ran.fetch_add(1, Ordering::Relaxed);
                        i
                    }));
                    // Let the workers drain and fall asleep now and then, so
                    // spawns keep landing on sleeping workers.
                    if i % 1000 == 0 {
                        thread::yield_now();
                    }
                }
                joins.into_iter().map(|j| j.join().unwrap()).sum::<usize>()
            })
        })
        .collect();
    let total: usize = producers.into_iter().map(|p| p.join().unwrap()).sum();
    assert_eq!(ran.load(Ordering::Relaxed), threads * per_thread);
    assert_eq!(total, threads * (per_thread * (per_thread - 1) / 2));
}

/// Row 2: park/unpark ping-pong between fibers on all workers. Debug builds
/// assert inside the runtime that a fiber is never resumed while running
/// (double resume) — a violation panics the worker and fails this test.
#[test]
fn row2_ping_pong_never_double_resumes() {
    use std::sync::atomic::AtomicU32;
    let rt = Runtime::builder().workers(2).build().unwrap();
    let rounds: u32 = if cfg!(debug_assertions) {
        20_000
    } else {
        200_000
    };
    rt.block_on(move || {
        let mut joins = Vec::new();
        for _ in 0..8 {
            // `turn` is 0 when A may go, 1 when B may go.
            let turn = Arc::new(AtomicU32::new(0));
            let (tx, rx) = mpsc::channel::<fiber::Fiber>();
            let t = turn.clone();
            let b = threadlet::spawn(move || {
                let a = rx.recv().unwrap();
                for _ in 0..rounds {
                    while t.load(Ordering::Acquire) != 1 {
                        fiber::park();
                    }
                    t.store(0, Ordering::Release);
                    a.unpark();
                }
            });
            let b_handle = b.fiber().clone();
            let a = threadlet::spawn(move || {
                tx.send(fiber::current()).unwrap();
                for _ in 0..rounds {
                    while turn.load(Ordering::Acquire) != 0 {
                        fiber::park();
                    }
                    turn.store(1, Ordering::Release);
                    b_handle.unpark();
                }
            });
            joins.push(a);
            joins.push(b);
        }
        for j in joins {
            j.join().unwrap();
        }
    });
}

/// Row 2 without channels: raw `fiber::park` / `Fiber::unpark` races, with
/// wakes coming from plain threads too.
#[test]
fn row2_unpark_storm_from_threads() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let target = 2_000;
    let counter = Arc::new(AtomicUsize::new(0));
    let (c, d) = (counter.clone(), done.clone());
    let parker = rt.spawn(move || {
        // Park until the wakers have counted to `target`; every return from
        // park must be a clean resume on this fiber's worker.
        let me = thread::current().id();
        while c.load(Ordering::Acquire) < target {
            fiber::park();
            assert_eq!(thread::current().id(), me);
        }
        d.store(1, Ordering::Release);
    });
    let fiber_handle = parker.fiber().clone();
    let wakers: Vec<_> = (0..3)
        .map(|_| {
            let (f, c, d) = (fiber_handle.clone(), counter.clone(), done.clone());
            thread::spawn(move || {
                while d.load(Ordering::Acquire) == 0 {
                    c.fetch_add(1, Ordering::AcqRel);
                    f.unpark();
                    thread::yield_now();
                }
            })
        })
        .collect();
    parker.join().unwrap();
    for w in wakers {
        w.join().unwrap();
    }
}

thread_local! {
    static MARK: Cell<u64> = const { Cell::new(0) };
}

/// Row 7: a started fiber never changes thread: a thread-local set before
/// 1000 parks (sleeps, yields, channel waits) still reads the same, and the
/// OS thread id is unchanged, while other fibers keep every worker busy.
#[test]
fn row7_thread_locals_stay_put() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        let busy: Vec<_> = (0..4)
            .map(|_| {
                threadlet::spawn(|| {
                    for _ in 0..2000 {
                        fiber::yield_now();
                    }
                })
            })
            .collect();
        let checkers: Vec<_> = (0..8u64)
            .map(|n| {
                threadlet::spawn(move || {
                    let me = thread::current().id();
                    MARK.with(|m| m.set(n + 1));
                    for i in 0..1000 {
                        match i % 3 {
                            0 => fiber::yield_now(),
                            1 => fiber::sleep(std::time::Duration::from_micros(50)),
                            _ => assert_eq!(threadlet::spawn(move || i).join().unwrap(), i),
                        }
                        assert_eq!(thread::current().id(), me, "fiber changed thread");
                        // Other fibers of this worker may have set MARK: only
                        // check it with no park between set and get.
                        MARK.with(|m| m.set(n + 1));
                        assert_eq!(MARK.with(|m| m.get()), n + 1);
                    }
                })
            })
            .collect();
        for h in busy.into_iter().chain(checkers) {
            h.join().unwrap();
        }
    });
}

/// Row 9: a `Drop` that blocks during a panic's unwinding must not switch
/// stacks: the fiber that runs next on that worker must not see
/// `panicking() == true`, and a lock it takes must not be poisoned.
#[test]
fn row9_blocking_drop_during_unwind_does_not_leak_panicking() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let lock = Arc::new(std::sync::Mutex::new(0u32));
    let (tx, rx) = mpsc::channel::<bool>();
    let lock2 = lock.clone();
    rt.block_on(move || {
        struct BlockingDrop;
        impl Drop for BlockingDrop {
            fn drop(&mut self) {
                // Blocks while unwinding: must block in place, not switch.
                fiber::sleep(std::time::Duration::from_millis(20));
                fiber::park_timeout(std::time::Duration::from_millis(20));
            }
        }
        let victim = threadlet::spawn(move || {
            let _d = BlockingDrop;
            panic!("intentional panic to unwind through a blocking Drop");
        });
        let observer = threadlet::spawn(move || {
            // Runs on the only worker, interleaved with the victim if the
            // runtime wrongly switched during unwinding.
            for _ in 0..50 {
                tx.send(thread::panicking()).unwrap();
                *lock2.lock().unwrap() += 1;
                fiber::yield_now();
            }
        });
        assert!(victim.join().is_err());
        observer.join().unwrap();
    });
    let saw_panicking = rx.iter().any(|p| p);
    assert!(!saw_panicking, "a fiber saw panicking() == true");
    assert!(!lock.is_poisoned());
    assert_eq!(*lock.lock().unwrap(), 50);
}

/// Row 10: 1000 fibers, 10% panic: all others finish, join gives the
/// payloads, the workers survive.
#[test]
fn row10_panics_are_delivered_through_join() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (ok, panicked) = rt.block_on(|| {
        let handles: Vec<_> = (0..1000u32)
            .map(|i| {
                threadlet::spawn(move || {
                    fiber::yield_now();
                    if i % 10 == 0 {
                        panic!("fiber {i} panics on purpose");
                    }
                    i
                })
            })
            .collect();
        let mut ok = 0;
        let mut panicked = 0;
        for (i, h) in handles.into_iter().enumerate() {
            match h.join() {
                Ok(v) => {
                    assert_eq!(v as usize, i);
                    ok += 1;
                }
                Err(payload) => {
                    let msg = payload.downcast_ref::<String>().expect("String payload");
                    assert_eq!(msg, &format!("fiber {i} panics on purpose"));
                    panicked += 1;
                }
            }
        }
        (ok, panicked)
    });
    assert_eq!((ok, panicked), (900, 100));
    assert_eq!(rt.stats().workers, 2);
    // The workers still run fibers after all those panics.
    assert_eq!(rt.block_on(|| 5), 5);
    assert_eq!(rt.stats().fibers_alive, 0);
}

/// `{"k":[{"k":[ ... 1 ... ]}]}` nested `depth` objects deep (built
/// iteratively: only parsing and printing recurse).
fn nest(depth: usize) -> serde_json::Value {
    let mut v = serde_json::Value::from(1);
    for _ in 0..depth {
        let mut map = serde_json::Map::new();
        map.insert("k".to_owned(), serde_json::Value::Array(vec![v]));
        v = serde_json::Value::Object(map);
    }
    v
}

/// Row 13: the default stack fits serde_json at depth 128, a deep `{:#?}`
/// and `std::io::copy` (run in debug by `cargo test`, and in release by
/// `cargo test --release`).
#[test]
fn row13_default_stack_fits_common_libraries() {
    threadlet::run(|| {
        let h = threadlet::spawn(|| {
            // serde_json's own recursion limit is 128 levels: parse right up
            // to it (an object and an array per level counts two).
            let text = serde_json::to_string(&nest(63)).unwrap();
            let back: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(back, nest(63));
            let arrays = format!("{}1{}", "[".repeat(127), "]".repeat(127));
            let parsed: serde_json::Value = serde_json::from_str(&arrays).unwrap();
            assert_eq!(serde_json::to_string(&parsed).unwrap(), arrays);
            let pretty = format!("{:#?}", nest(64));
            assert!(pretty.len() > 1000);
            let data = vec![7u8; 1 << 20];
            let mut out = Vec::new();
            let n = std::io::copy(&mut &data[..], &mut out).unwrap();
            assert_eq!(n as usize, data.len());
            assert_eq!(out, data);
        });
        h.join().unwrap();
    });
}
