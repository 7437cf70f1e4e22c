//! Tests of `threadlet::unblock`: results, panics, concurrency, a responsive
//! worker, plain-thread behaviour and cancellation.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use threadlet::fiber::Cancelled;
use threadlet::Runtime;

#[test]
fn unblock_returns_value() {
    let v = threadlet::run(|| threadlet::unblock(|| 6 * 7));
    assert_eq!(v, 42);
}

#[test]
fn unblock_runs_on_a_named_pool_thread() {
    let name =
        threadlet::run(|| threadlet::unblock(|| thread::current().name().map(str::to_owned)));
    let name = name.expect("pool threads are named");
    assert!(
        name.starts_with("threadlet-blocking-"),
        "thread name {name:?}"
    );
}

#[test]
fn unblock_on_plain_thread_runs_in_place() {
    let me = thread::current().id();
    let there = threadlet::unblock(|| thread::current().id());
    assert_eq!(me, there);
}

#[test]
fn unblock_propagates_panic() {
    let payload = threadlet::run(|| {
        threadlet::spawn(|| threadlet::unblock(|| -> u32 { panic!("boom in the pool") }))
            .join()
            .expect_err("the panic must reach the caller")
    });
    let msg = payload
        .downcast_ref::<&str>()
        .copied()
        .unwrap_or("<not a &str>");
    assert_eq!(msg, "boom in the pool");
}

#[test]
fn unblock_runs_many_calls_concurrently() {
    let (sum, max_running) = threadlet::run(|| {
        let running = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..1000u64)
            .map(|i| {
                let (running, max) = (running.clone(), max.clone());
                threadlet::spawn(move || {
                    threadlet::unblock(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(now, Ordering::SeqCst);
                        thread::sleep(Duration::from_millis(10));
                        running.fetch_sub(1, Ordering::SeqCst);
                        i
                    })
                })
            })
            .collect();
        let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        (sum, max.load(Ordering::SeqCst))
    });
    assert_eq!(sum, 999 * 1000 / 2);
    assert!(max_running > 1, "the pool never ran two calls at once");
}

/// Each of `n` closures waits until all `n` are inside at the same time; only
/// a pool that grew to `n` threads lets them meet.
#[test]
fn unblock_pool_grows_until_all_calls_meet() {
    const N: usize = 8;
    let met = threadlet::run(|| {
        let meeting = Arc::new((Mutex::new(0usize), Condvar::new()));
        let handles: Vec<_> = (0..N)
            .map(|_| {
                let meeting = meeting.clone();
                threadlet::spawn(move || {
                    threadlet::unblock(move || {
                        let (count, cv) = &*meeting;
                        let mut n = count.lock().unwrap();
                        *n += 1;
                        cv.notify_all();
                        let (n, timeout) = cv
                            .wait_timeout_while(n, Duration::from_secs(10), |n| *n < N)
                            .unwrap();
                        !timeout.timed_out() && *n >= N
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&ok| ok)
            .count()
    });
    assert_eq!(met, N);
}

/// With one worker, a second fiber must run while the first waits in
/// `unblock`: the closure only returns `true` if that fiber sends to it.
#[test]
fn unblock_keeps_the_worker_free_for_other_fibers() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let got_message = rt.block_on(|| {
        let me = threadlet::fiber::current();
        let started = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<()>();
        let started2 = started.clone();
        let h = threadlet::spawn(move || {
            threadlet::unblock(move || {
                started2.store(true, Ordering::SeqCst);
                me.unpark();
                rx.recv_timeout(Duration::from_secs(10)).is_ok()
            })
        });
        while !started.load(Ordering::SeqCst) {
            threadlet::fiber::park();
        }
        // This fiber runs on the only worker while the closure blocks.
        tx.send(()).unwrap();
        h.join().unwrap()
    });
    assert!(got_message);
}

/// A cancelled fiber leaves `unblock` at once; its closure still runs to the
/// end on the pool.
#[test]
fn unblock_cancelled_caller_unwinds_and_closure_finishes() {
    let rt = Runtime::new().unwrap();
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let h = rt.spawn(move || {
        threadlet::unblock(move || {
            entered_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            done_tx.send(()).unwrap();
        });
        "returned normally"
    });
    entered_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    h.cancel();
    let payload = h.join().expect_err("a cancelled fiber does not return");
    assert!(payload.downcast_ref::<Cancelled>().is_some());
    release_tx.send(()).unwrap();
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the closure keeps running after its caller was cancelled");
}
