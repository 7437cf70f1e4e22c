//! The fiber API against its contract (DESIGN.md §2): spawn, Builder,
//! JoinHandle, cancel, park tokens, scope, spawn_local, fiber_local!,
//! misuse messages, stats and dump, time::timeout.

use std::cell::Cell;
use std::io::ErrorKind;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use threadlet::fiber::{self, Builder, Cancelled};
use threadlet::Runtime;

#[test]
fn spawn_outside_a_runtime_panics_naming_run() {
    let err = std::panic::catch_unwind(|| threadlet::spawn(|| ())).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("threadlet::run"), "{msg}");
}

#[test]
fn builder_names_the_fiber() {
    let name = threadlet::run(|| {
        Builder::new()
            .name("worker-7".to_owned())
            .spawn(|| fiber::current().name().map(str::to_owned))
            .unwrap()
            .join()
            .unwrap()
    });
    assert_eq!(name.as_deref(), Some("worker-7"));
}

#[test]
fn stack_size_zero_is_clamped_and_absurd_is_an_error() {
    threadlet::run(|| {
        let small = Builder::new().stack_size(0).spawn(|| 1 + 1).unwrap();
        assert_eq!(small.join().unwrap(), 2);
        let err = Builder::new()
            .stack_size(usize::MAX)
            .spawn(|| ())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("stack"), "{err}");
    });
    let err = Runtime::builder()
        .stack_size(usize::MAX)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn ids_are_unique_and_current_matches_handle() {
    threadlet::run(|| {
        let h = threadlet::spawn(|| fiber::current().id());
        let id = h.fiber().id();
        assert_eq!(h.join().unwrap(), id);
        assert_ne!(id, fiber::current().id());
    });
}

#[test]
fn unpark_before_park_is_kept_as_a_token() {
    threadlet::run(|| {
        let me = fiber::current();
        me.unpark();
        // Returns at once: the token was there.
        fiber::park();
        // park_timeout with no token returns after the timeout.
        let start = Instant::now();
        fiber::park_timeout(Duration::from_millis(20));
        assert!(start.elapsed() >= Duration::from_millis(20));
    });
}

#[test]
fn cancel_unwinds_a_parked_fiber_and_runs_its_destructors() {
    struct Flag(Arc<AtomicUsize>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    threadlet::run(|| {
        let dropped = Arc::new(AtomicUsize::new(0));
        let flag = Flag(dropped.clone());
        let h = threadlet::spawn(move || {
            let _flag = flag;
            loop {
                fiber::sleep(Duration::from_secs(3600));
            }
        });
        fiber::sleep(Duration::from_millis(5));
        h.cancel();
        let payload = h.join().unwrap_err();
        assert!(payload.downcast_ref::<Cancelled>().is_some());
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn cancel_before_start_never_runs_the_closure() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    rt.block_on(move || {
        let h = threadlet::spawn(move || r.fetch_add(1, Ordering::SeqCst));
        // Still queued behind us on this single worker.
        h.cancel();
        assert!(h.join().unwrap_err().downcast_ref::<Cancelled>().is_some());
    });
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn scope_lets_fibers_borrow() {
    threadlet::run(|| {
        let mut counts = vec![0u32; 8];
        let total = AtomicUsize::new(0);
        fiber::scope(|s| {
            for (i, slot) in counts.iter_mut().enumerate() {
                let total = &total;
                s.spawn(move || {
                    fiber::yield_now();
                    *slot = i as u32 * 10;
                    total.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(total.load(Ordering::SeqCst), 8);
        assert_eq!(counts, (0..8).map(|i| i * 10).collect::<Vec<_>>());
        let v = fiber::scope(|s| s.spawn(|| counts.len()).join().unwrap());
        assert_eq!(v, 8);
    });
}

#[test]
fn scope_panics_if_an_unjoined_fiber_panicked() {
    threadlet::run(|| {
        let r = std::panic::catch_unwind(|| {
            fiber::scope(|s| {
                s.spawn(|| panic!("scoped fiber fails on purpose"));
            })
        });
        assert!(r.is_err());
    });
}

#[test]
fn spawn_local_runs_non_send_work_on_this_worker() {
    threadlet::run(|| {
        let shared = Rc::new(Cell::new(1));
        let s2 = shared.clone();
        let me = std::thread::current().id();
        let h = fiber::spawn_local(move || {
            fiber::yield_now();
            s2.set(s2.get() + 41);
            (Rc::strong_count(&s2), std::thread::current().id())
        });
        let (count, thread) = h.join().unwrap();
        assert_eq!(count, 2);
        assert_eq!(thread, me);
        assert_eq!(shared.get(), 42);
    });
}

threadlet::fiber_local! {
    static COUNTER: Cell<u32> = Cell::new(0);
}

#[test]
fn fiber_locals_are_per_fiber() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    rt.block_on(|| {
        let barrier = Arc::new(threadlet::sync::Barrier::new(4));
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let b = barrier.clone();
                threadlet::spawn(move || {
                    COUNTER.with(|c| c.set(i * 100));
                    // All four fibers share one worker thread and interleave.
                    b.wait();
                    COUNTER.with(|c| c.get())
                })
            })
            .collect();
        let got: Vec<u32> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(got, vec![0, 100, 200, 300]);
    });
    // On a plain thread the key is per thread.
    COUNTER.with(|c| c.set(5));
    assert_eq!(
        std::thread::spawn(|| COUNTER.with(|c| c.get()))
            .join()
            .unwrap(),
        0
    );
    assert_eq!(COUNTER.with(|c| c.get()), 5);
}

#[test]
fn two_runs_at_once_are_independent() {
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|k| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                threadlet::run(move || {
                    b.wait();
                    let hs: Vec<_> = (0..100).map(|i| threadlet::spawn(move || i * k)).collect();
                    hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
                })
            })
        })
        .collect();
    let sums: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(sums, vec![0, 4950]);
}

#[test]
fn run_reraises_the_closure_panic() {
    let err =
        std::panic::catch_unwind(|| threadlet::run(|| panic!("boom on purpose"))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom on purpose"));
}

#[test]
fn stats_and_dump_describe_the_fibers() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        let sleeper = Builder::new()
            .name("sleeper".to_owned())
            .spawn(|| fiber::sleep(Duration::from_secs(3600)))
            .unwrap();
        let parker = Builder::new()
            .name("parker".to_owned())
            .spawn(|| loop {
                fiber::park();
            })
            .unwrap();
        // Wait until both have started and parked.
        let states = loop {
            let dump = threadlet::runtime::dump();
            let state = |n: &str| {
                dump.iter()
                    .find(|f| f.name.as_deref() == Some(n))
                    .map(|f| f.state.clone())
            };
            if let (Some(a), Some(b)) = (state("sleeper"), state("parker")) {
                if a != "runnable" && b != "runnable" {
                    break (a, b);
                }
            }
            fiber::sleep(Duration::from_millis(1));
        };
        assert_eq!(states, ("sleeping".to_owned(), "parked".to_owned()));
        let me = threadlet::runtime::dump()
            .into_iter()
            .find(|f| f.id == fiber::current().id())
            .unwrap();
        assert_eq!(me.state, "running");
        let stats = threadlet::runtime::stats();
        assert_eq!(stats.fibers_alive, 3);
        assert_eq!(stats.workers, 2);
        sleeper.cancel();
        parker.cancel();
        assert!(sleeper.join().is_err());
        assert!(parker.join().is_err());
        assert_eq!(threadlet::runtime::stats().fibers_alive, 1);
    });
}

#[test]
fn timeout_returns_value_or_cancels() {
    threadlet::run(|| {
        assert_eq!(
            threadlet::time::timeout(Duration::from_secs(10), || 7).unwrap(),
            7
        );
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        let err = threadlet::time::timeout(Duration::from_millis(10), move || {
            struct Guard(Arc<AtomicUsize>);
            impl Drop for Guard {
                fn drop(&mut self) {
                    self.0.fetch_add(1, Ordering::SeqCst);
                }
            }
            let _g = Guard(d);
            fiber::sleep(Duration::from_secs(3600));
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        // The timed-out fiber is unwound (eventually: it is cancelled).
        while dropped.load(Ordering::SeqCst) == 0 {
            fiber::sleep(Duration::from_millis(1));
        }
    });
}

#[test]
fn block_on_and_spawn_from_outside() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let h = rt.spawn(|| 21 * 2);
    assert_eq!(h.join().unwrap(), 42);
    assert_eq!(rt.block_on(|| threadlet::spawn(|| 5).join().unwrap()), 5);
    let handle = rt.handle();
    let t = std::thread::spawn(move || handle.spawn(|| 9).join().unwrap());
    assert_eq!(t.join().unwrap(), 9);
}
