//! The blocking pool's thread cap (own binary: the cap is process-wide).
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

#[test]
fn pool_never_runs_more_calls_than_the_cap() {
    threadlet::set_max_blocking_threads(2).unwrap();
    let (done, max) = threadlet::run(|| {
        let running = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (running, max) = (running.clone(), max.clone());
                threadlet::spawn(move || {
                    threadlet::unblock(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(now, Ordering::SeqCst);
                        thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        let done = handles
            .into_iter()
            .map(|h| h.join())
            .filter(Result::is_ok)
            .count();
        (done, max.load(Ordering::SeqCst))
    });
    assert_eq!(done, 8, "queued calls beyond the cap still run");
    assert!(max <= 2, "{max} calls ran at once with a cap of 2");
    assert!(threadlet::blocking_threads() <= 2);
}

#[test]
fn cap_of_zero_is_invalid_input() {
    let err = threadlet::set_max_blocking_threads(0).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("at least one thread"), "{err}");
}
