//! Cancellation and poisoning (issue 9, item 10): a critical section cut
//! short by cancellation — `JoinHandle::cancel`, an expired `time::timeout`,
//! runtime shutdown — poisons a `threadlet::sync::Mutex` (and `RwLock`), as a
//! panic does: std's rule, kept on purpose (see `sync::Mutex`'s docs).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use threadlet::sync::{Mutex, RwLock};

/// The section: half an update, then a blocking call that gets cancelled.
fn half_update(m: &Mutex<(u32, u32)>, locked: &AtomicBool) {
    let mut g = m.lock().unwrap();
    locked.store(true, Ordering::SeqCst);
    g.0 += 1;
    threadlet::time::sleep(Duration::from_secs(3600));
    g.1 += 1;
}

/// Runs `section` under `time::timeout` until the timeout hits it after it
/// took its lock (`locked` set): a loaded machine may not even start it
/// within a short limit, so the limit doubles until it does.
fn time_out_inside(section: impl Fn(&AtomicBool) + Send + Sync + 'static) {
    let section = Arc::new(section);
    let mut limit = Duration::from_millis(20);
    loop {
        let locked = Arc::new(AtomicBool::new(false));
        let (s, l) = (section.clone(), locked.clone());
        let err = threadlet::time::timeout(limit, move || s(&l)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        if locked.load(Ordering::SeqCst) {
            return;
        }
        assert!(limit < Duration::from_secs(60), "the section never ran");
        limit *= 2;
    }
}

#[test]
fn timeout_inside_a_critical_section_poisons() {
    threadlet::run(|| {
        let m = Arc::new(Mutex::new((0, 0)));
        let m2 = m.clone();
        time_out_inside(move |locked| half_update(&m2, locked));
        let poisoned = m
            .lock()
            .expect_err("an interrupted critical section poisons");
        // The half-done update is visible through the poison error...
        assert_eq!(*poisoned.into_inner(), (1, 0));
        // ...and a caller that knows how to repair it says so explicitly.
        m.clear_poison();
        assert!(m.lock().is_ok());
    });
}

#[test]
fn cancel_inside_a_critical_section_poisons() {
    threadlet::run(|| {
        let m = Arc::new(Mutex::new((0, 0)));
        let rw = Arc::new(RwLock::new(0));
        let (m2, rw2) = (m.clone(), rw.clone());
        let (tx, rx) = threadlet::sync::oneshot::channel();
        let h = threadlet::spawn(move || {
            let _w = rw2.write().unwrap();
            tx.send(()).unwrap();
            half_update(&m2, &AtomicBool::new(false));
        });
        rx.recv().unwrap();
        h.cancel();
        assert!(h.join().is_err());
        assert!(m.is_poisoned());
        assert!(rw.is_poisoned());
    });
}

#[test]
fn a_section_that_ends_before_the_cancel_does_not_poison() {
    threadlet::run(|| {
        let m = Arc::new(Mutex::new(0));
        let m2 = m.clone();
        time_out_inside(move |locked| {
            *m2.lock().unwrap() += 1;
            locked.store(true, Ordering::SeqCst);
            threadlet::time::sleep(Duration::from_secs(3600));
        });
        assert!(*m.lock().expect("released before the cancel: not poisoned") >= 1);
    });
}
