//! RELIABILITY row 23: cancelling a fiber reaches the work it waits on —
//! `time::timeout`'s inner fiber, `fiber::scope`'s fibers, the future of
//! `block_on`, the slot of `unblock`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use threadlet::fiber::Cancelled;
use threadlet::{JoinHandle, Runtime};

/// Generous bound for anything that should happen "at once" on a loaded CI
/// machine; reaching it means the code hangs.
const HANG: Duration = Duration::from_secs(20);

/// Sends on `0` when dropped (a destructor run by unwinding).
struct OnDrop(mpsc::Sender<()>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Joins `h` from a helper thread, failing the test instead of hanging.
fn join_within<T: Send + 'static>(h: JoinHandle<T>) -> thread::Result<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(h.join());
    });
    rx.recv_timeout(HANG)
        .expect("join of the cancelled fiber did not return: the nested wait hangs")
}

/// A loop of sleeps bumping `count`, announcing its first round on `started`.
fn sleepy_loop(count: &AtomicUsize, started: &mpsc::Sender<()>) -> ! {
    loop {
        if count.fetch_add(1, Ordering::SeqCst) == 0 {
            let _ = started.send(());
        }
        threadlet::time::sleep(Duration::from_millis(1));
    }
}

fn assert_cancelled<T>(result: thread::Result<T>) {
    let payload = result.err().expect("a cancelled fiber does not return");
    assert!(
        payload.downcast_ref::<Cancelled>().is_some(),
        "expected the Cancelled payload"
    );
}

/// Cancel a fiber that waits in `timeout`: the inner fiber is cancelled and
/// joined, so its loop has stopped (its destructors ran) by the time `join`
/// on the outer fiber returns.
#[test]
fn row23_cancel_inside_timeout_stops_the_inner_loop() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let (started_tx, started_rx) = mpsc::channel();
    let (stopped_tx, stopped_rx) = mpsc::channel();
    let c = count.clone();
    let outer = rt.spawn(move || {
        threadlet::time::timeout(Duration::from_secs(3600), move || {
            let _stopped = OnDrop(stopped_tx);
            sleepy_loop(&c, &started_tx)
        })
    });
    started_rx.recv_timeout(HANG).expect("inner loop never ran");
    outer.cancel();
    assert_cancelled(join_within(outer));
    stopped_rx
        .try_recv()
        .expect("the inner fiber was still running after the outer one was cancelled and joined");
    assert!(count.load(Ordering::SeqCst) >= 1);
}

/// Cancel a fiber inside `fiber::scope`: its scoped fibers are cancelled,
/// and the scope still waits for all of them (they borrow from it) before
/// the fiber unwinds.
#[test]
fn row23_cancel_inside_scope_cancels_and_waits_for_scoped_fibers() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (stopped_tx, stopped_rx) = mpsc::channel();
    let outer = rt.spawn(move || {
        let borrowed = AtomicUsize::new(0);
        threadlet::fiber::scope(|s| {
            for _ in 0..3 {
                let started = started_tx.clone();
                // Made outside the body and moved in: a fiber cancelled before
                // it ever ran drops its body unrun, and the guard with it.
                let stopped = OnDrop(stopped_tx.clone());
                let borrowed = &borrowed;
                s.spawn(move || {
                    let _stopped = stopped;
                    started.send(()).unwrap();
                    // Uses the borrow from the scope's caller until cancelled.
                    sleepy_loop(borrowed, &started)
                });
            }
        });
        "the scope returned normally"
    });
    for _ in 0..3 {
        started_rx
            .recv_timeout(HANG)
            .expect("scoped fiber never ran");
    }
    outer.cancel();
    assert_cancelled(join_within(outer));
    for i in 0..3 {
        stopped_rx
            .try_recv()
            .unwrap_or_else(|_| panic!("scoped fiber {i} had not finished when the scope left"));
    }
}

/// A scope whose own body is cancelled (not its wait) also cancels the
/// fibers it spawned.
#[test]
fn row23_cancel_in_scope_body_cancels_scoped_fibers() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (stopped_tx, stopped_rx) = mpsc::channel();
    let outer = rt.spawn(move || {
        threadlet::fiber::scope(|s| {
            let started = started_tx.clone();
            s.spawn(move || {
                let _stopped = OnDrop(stopped_tx);
                sleepy_loop(&AtomicUsize::new(0), &started)
            });
            // The body itself parks; the cancellation lands here first.
            threadlet::time::sleep(Duration::from_secs(3600));
        })
    });
    started_rx
        .recv_timeout(HANG)
        .expect("scoped fiber never ran");
    outer.cancel();
    assert_cancelled(join_within(outer));
    stopped_rx.try_recv().expect("scoped fiber still running");
}

/// Result of an `unblock` closure whose caller went away: it must be dropped
/// by the pool thread (the slot does not dangle or leak).
struct Result0(mpsc::Sender<String>);

impl Drop for Result0 {
    fn drop(&mut self) {
        let name = thread::current().name().unwrap_or("").to_owned();
        let _ = self.0.send(name);
    }
}

/// Cancel a fiber waiting in `unblock`: it unwinds at once (the closure
/// cannot be interrupted), and when the closure later returns, its result is
/// dropped on the pool thread.
#[test]
fn row23_cancel_inside_unblock_abandons_the_result_to_the_pool() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let outer = rt.spawn(move || {
        let _result = threadlet::unblock(move || {
            entered_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            Result0(dropped_tx)
        });
        "unblock returned"
    });
    entered_rx.recv_timeout(HANG).expect("closure never ran");
    outer.cancel();
    assert_cancelled(join_within(outer));
    release_tx.send(()).unwrap();
    let dropped_on = dropped_rx
        .recv_timeout(HANG)
        .expect("the abandoned result was never dropped");
    assert!(
        dropped_on.starts_with("threadlet-blocking"),
        "dropped on {dropped_on:?}, not on the pool thread"
    );
}

/// A future that never completes and reports its drop.
struct Pending(#[allow(dead_code)] OnDrop, Option<mpsc::Sender<()>>);

impl std::future::Future for Pending {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if let Some(polled) = self.1.take() {
            let _ = polled.send(());
        }
        std::task::Poll::Pending
    }
}

/// Cancel a fiber whose scoped fiber waits in `block_on`: the future is
/// dropped (by the scoped fiber's unwind) before the outer `join` returns.
#[test]
fn row23_cancel_reaches_block_on_in_a_scoped_fiber() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (polled_tx, polled_rx) = mpsc::channel();
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let outer = rt.spawn(move || {
        threadlet::fiber::scope(|s| {
            s.spawn(move || threadlet::block_on(Pending(OnDrop(dropped_tx), Some(polled_tx))));
        })
    });
    polled_rx.recv_timeout(HANG).expect("future never polled");
    outer.cancel();
    assert_cancelled(join_within(outer));
    dropped_rx
        .try_recv()
        .expect("the future was not dropped when its fiber was cancelled");
}
