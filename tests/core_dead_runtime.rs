//! RELIABILITY row 22: spawning onto a runtime that is gone (or going) never
//! leaves a fiber queued where no worker will run it: `join` returns
//! `Err(Cancelled)` at once and the closure is dropped unrun.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use threadlet::fiber::Cancelled;
use threadlet::{JoinHandle, Runtime};

/// Joins `h` on a helper thread and fails the test if that takes more than
/// a minute (a hang must fail, not stall CI).
fn join_or_fail<T: Send + 'static>(h: JoinHandle<T>) -> thread::Result<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(h.join());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("join on a dead runtime hung")
}

struct Flag(Arc<AtomicBool>);
impl Drop for Flag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn row22_spawn_after_drop_is_cancelled_at_once() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let handle = rt.handle();
    assert_eq!(rt.block_on(|| 1), 1);
    drop(rt);
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = Flag(dropped.clone());
    let h = handle.spawn(move || {
        let _flag = flag;
        42
    });
    assert!(
        dropped.load(Ordering::SeqCst),
        "the closure must be dropped unrun at once"
    );
    assert!(h.is_finished());
    let payload = join_or_fail(h).unwrap_err();
    assert!(payload.downcast_ref::<Cancelled>().is_some());
    // spawn_with says the same.
    let h = handle
        .spawn_with(threadlet::fiber::Builder::new(), || 7)
        .unwrap();
    assert!(join_or_fail(h).is_err());
}

#[test]
fn row22_spawn_racing_shutdown_never_hangs() {
    for round in 0..40 {
        let rt = Runtime::builder().workers(1 + round % 2).build().unwrap();
        let handle = rt.handle();
        let go = Arc::new(AtomicBool::new(false));
        let ran = Arc::new(AtomicUsize::new(0));
        let spawner = {
            let (go, ran) = (go.clone(), ran.clone());
            thread::spawn(move || {
                let mut handles = Vec::new();
                while !go.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
                for _ in 0..2000 {
                    let ran = ran.clone();
                    handles.push(handle.spawn(move || {
                        ran.fetch_add(1, Ordering::Relaxed);
                    }));
                }
                handles
            })
        };
        go.store(true, Ordering::Release);
        drop(rt);
        let handles = spawner.join().unwrap();
        let mut ok = 0;
        for h in handles {
            match join_or_fail(h) {
                Ok(()) => ok += 1,
                Err(p) => assert!(p.downcast_ref::<Cancelled>().is_some()),
            }
        }
        assert_eq!(ok, ran.load(Ordering::Relaxed));
    }
}
