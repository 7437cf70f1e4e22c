//! Tests of `threadlet::block_on` on fibers and plain threads.
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use threadlet::fiber::Cancelled;
use threadlet::Runtime;

/// Pending until another thread completes it; counts its polls. On the first
/// poll it starts a thread that waits (up to 10 s) for `go`, then sets the
/// output and wakes the future.
struct Remote {
    shared: Arc<Mutex<(Option<&'static str>, Option<Waker>)>>,
    go: Option<mpsc::Receiver<()>>,
    polls: Arc<AtomicUsize>,
}

impl Future for Remote {
    type Output = &'static str;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        let mut st = self.shared.lock().unwrap();
        if let Some(msg) = st.0 {
            return Poll::Ready(msg);
        }
        st.1 = Some(cx.waker().clone());
        drop(st);
        if let Some(go) = self.go.take() {
            let shared = self.shared.clone();
            thread::spawn(move || {
                let msg = match go.recv_timeout(Duration::from_secs(10)) {
                    Ok(()) => "woken from another thread",
                    Err(_) => "the go signal never came",
                };
                let waker = {
                    let mut st = shared.lock().unwrap();
                    st.0 = Some(msg);
                    st.1.take()
                };
                waker.expect("polled before the wake").wake();
            });
        }
        Poll::Pending
    }
}

fn remote() -> (Remote, mpsc::Sender<()>, Arc<AtomicUsize>) {
    let (tx, rx) = mpsc::channel();
    let polls = Arc::new(AtomicUsize::new(0));
    let fut = Remote {
        shared: Arc::new(Mutex::new((None, None))),
        go: Some(rx),
        polls: polls.clone(),
    };
    (fut, tx, polls)
}

/// Wakes itself `n - 1` times before completing; counts polls.
struct YieldN {
    left: usize,
    polls: usize,
}

impl Future for YieldN {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        self.polls += 1;
        if self.left == 0 {
            return Poll::Ready(self.polls);
        }
        self.left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn block_on_ready_on_fiber_and_thread() {
    assert_eq!(threadlet::block_on(std::future::ready(5)), 5);
    assert_eq!(
        threadlet::run(|| threadlet::block_on(std::future::ready(6))),
        6
    );
}

#[test]
fn block_on_fiber_future_woken_from_another_thread() {
    let (msg, polls) = threadlet::run(|| {
        let (fut, go, polls) = remote();
        go.send(()).unwrap();
        (threadlet::block_on(fut), polls.load(Ordering::SeqCst))
    });
    assert_eq!(msg, "woken from another thread");
    assert_eq!(polls, 2, "polled once, then once per wake: no busy loop");
}

#[test]
fn block_on_thread_future_woken_from_another_thread() {
    let (fut, go, polls) = remote();
    go.send(()).unwrap();
    assert_eq!(threadlet::block_on(fut), "woken from another thread");
    assert_eq!(polls.load(Ordering::SeqCst), 2);
}

#[test]
fn block_on_future_that_wakes_itself() {
    let polls = threadlet::run(|| threadlet::block_on(YieldN { left: 4, polls: 0 }));
    assert_eq!(polls, 5);
    assert_eq!(threadlet::block_on(YieldN { left: 3, polls: 0 }), 4);
}

/// One worker: another fiber must run while `block_on` waits, since only it
/// lets the future complete.
#[test]
fn block_on_parks_the_fiber_not_the_worker() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let msg = rt.block_on(|| {
        let (fut, go, _) = remote();
        let sender = threadlet::spawn(move || {
            threadlet::yield_now();
            go.send(()).unwrap();
        });
        let msg = threadlet::block_on(fut);
        sender.join().unwrap();
        msg
    });
    assert_eq!(msg, "woken from another thread");
}

/// Drops a flag when dropped; never completes.
struct Forever {
    dropped: Arc<AtomicBool>,
    polled: Option<mpsc::Sender<()>>,
}

impl Future for Forever {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if let Some(tx) = self.polled.take() {
            tx.send(()).unwrap();
        }
        Poll::Pending
    }
}

impl Drop for Forever {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

#[test]
fn block_on_cancelled_fiber_drops_the_future() {
    let rt = Runtime::new().unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let (polled_tx, polled_rx) = mpsc::channel();
    let d = dropped.clone();
    let h = rt.spawn(move || {
        threadlet::block_on(Forever {
            dropped: d,
            polled: Some(polled_tx),
        })
    });
    polled_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    h.cancel();
    let payload = h.join().expect_err("cancelled");
    assert!(payload.downcast_ref::<Cancelled>().is_some());
    assert!(
        dropped.load(Ordering::SeqCst),
        "the future was dropped by the unwind"
    );
}
