//! RELIABILITY row 11: shutdown unwinds every suspended fiber (every Drop
//! runs) and releases every fd the runtime opened. A single test in its own
//! binary, so the process-wide fd count is not disturbed by other tests.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn row11_shutdown_unwinds_parked_fibers_and_closes_fds() {
    // Warm up std's lazily created fds (none expected, but be exact).
    threadlet::run(|| ());
    let fds_before = common::fd_count();
    let maps_before = common::map_count();
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    threadlet::run(move || {
        for i in 0..300 {
            let guard = Counted(d.clone());
            threadlet::spawn(move || {
                let _guard = guard;
                match i % 3 {
                    0 => loop {
                        threadlet::fiber::park();
                    },
                    1 => threadlet::fiber::sleep(Duration::from_secs(3600)),
                    _ => loop {
                        threadlet::yield_now();
                    },
                }
            });
        }
        // Spawned but never started by the time `run` returns: dropped unrun.
        for _ in 0..50 {
            let guard = Counted(d.clone());
            threadlet::spawn(move || drop(guard));
        }
        threadlet::fiber::sleep(Duration::from_millis(20));
    });
    assert_eq!(
        drops.load(Ordering::SeqCst),
        350,
        "every fiber's captures dropped"
    );
    assert_eq!(common::fd_count(), fds_before, "runtime fds closed");
    // Stack slabs are unmapped: back to within a few mappings of the start
    // (the allocator may keep an arena or two).
    let maps_after = common::map_count();
    assert!(
        maps_after <= maps_before + 4,
        "mappings {maps_before} -> {maps_after}"
    );
}
