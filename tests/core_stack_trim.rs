//! RELIABILITY rows 20 and 26: memory returns after a burst. Thousands of
//! fibers each touch 64 KiB of stack at once; a few seconds after they are
//! gone, idle workers have trimmed their stack caches and the process's RSS
//! is back within a tenth of the burst's growth. (Its own binary: RSS is
//! process-wide.)

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use threadlet::sync::Barrier;
use threadlet::Runtime;

const FIBERS: usize = 4096;
const TOUCH: usize = 64 * 1024;

/// Writes every page of a 64 KiB stack frame.
#[inline(never)]
fn touch_stack() {
    let mut buf = [0u8; TOUCH];
    for i in (0..TOUCH).step_by(1024) {
        buf[i] = i as u8;
    }
    std::hint::black_box(&mut buf);
}

#[test]
fn row26_rss_returns_after_a_burst() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.block_on(touch_stack);
    let base = common::rss_bytes();
    let touched = Arc::new(Barrier::new(FIBERS + 1));
    let release = Arc::new(Barrier::new(FIBERS + 1));
    let handles: Vec<_> = (0..FIBERS)
        .map(|_| {
            let (touched, release) = (touched.clone(), release.clone());
            rt.spawn(move || {
                touch_stack();
                touched.wait();
                release.wait();
            })
        })
        .collect();
    touched.wait();
    let peak = common::rss_bytes();
    release.wait();
    for h in handles {
        h.join().unwrap();
    }
    let growth = peak.saturating_sub(base);
    assert!(
        growth >= FIBERS * TOUCH / 2,
        "the burst grew RSS by only {} KiB; the test measures nothing",
        growth / 1024
    );
    let target = base + growth / 10;
    let start = Instant::now();
    let mut rss = common::rss_bytes();
    let after_join = rss;
    // Polls (the workers trim on their own once idle); the bound is loose
    // for a loaded machine, the trim itself takes a second or two.
    while rss > target && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
        rss = common::rss_bytes();
    }
    eprintln!(
        "RSS KiB: base {}, peak {} (+{}), after join {}, after {:?} {} (target <= {})",
        base / 1024,
        peak / 1024,
        growth / 1024,
        after_join / 1024,
        start.elapsed(),
        rss / 1024,
        target / 1024
    );
    assert!(
        rss <= target,
        "RSS still {} KiB above its base of {} KiB 20 s after a burst that grew it by {} KiB",
        (rss - base) / 1024,
        base / 1024,
        growth / 1024
    );
    // Stacks come back for the next burst (cold stacks are reused).
    let again: Vec<_> = (0..64).map(|i| rt.spawn(move || i)).collect();
    for (i, h) in again.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), i);
    }
}
