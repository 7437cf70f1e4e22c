//! Smoke tests of the core runtime: run, spawn/join, sleep, park, shutdown.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn run_returns_value() {
    assert_eq!(threadlet::run(|| 41 + 1), 42);
}

#[test]
fn spawn_join_many() {
    let n = threadlet::run(|| {
        let count = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..1000)
            .map(|i| {
                let c = count.clone();
                threadlet::spawn(move || {
                    threadlet::yield_now();
                    c.fetch_add(1, Ordering::Relaxed);
                    i
                })
            })
            .collect();
        let sum: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, 999 * 1000 / 2);
        count.load(Ordering::Relaxed)
    });
    assert_eq!(n, 1000);
}

#[test]
fn sleep_and_park() {
    threadlet::run(|| {
        let t = Instant::now();
        threadlet::fiber::sleep(Duration::from_millis(20));
        assert!(t.elapsed() >= Duration::from_millis(20));
        let h = threadlet::spawn(|| {
            threadlet::fiber::park();
            7
        });
        h.fiber().unpark();
        assert_eq!(h.join().unwrap(), 7);
    });
}

#[test]
fn shutdown_cancels_parked() {
    struct D(Arc<AtomicUsize>);
    impl Drop for D {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let c = Arc::new(AtomicUsize::new(0));
    let c2 = c.clone();
    threadlet::run(move || {
        for _ in 0..10 {
            let d = D(c2.clone());
            threadlet::spawn(move || {
                let _d = d;
                loop {
                    threadlet::fiber::park();
                }
            });
        }
        threadlet::fiber::sleep(Duration::from_millis(10));
    });
    assert_eq!(c.load(Ordering::SeqCst), 10);
}
