//! Parks 1,000,000 fibers at once, then wakes and joins them all.
//!
//! Prints the time to spawn them, the resident memory per parked fiber, and
//! the process's memory-mapping count (stacks are carved from large slabs
//! with `MADV_GUARD_INSTALL` guard pages, so a million stacks cost a few
//! thousand mappings, not two million).
//!
//! ```text
//! cargo run --release --example fibers            # 1,000,000 fibers
//! cargo run --release --example fibers -- 100000  # another count
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().count())
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rss_before = rss_kib();
    let maps_before = map_count();
    threadlet::run(move || {
        let go = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let go = go.clone();
                threadlet::spawn(move || {
                    while !go.load(Ordering::Acquire) {
                        threadlet::fiber::park();
                    }
                })
            })
            .collect();
        let spawned = start.elapsed();
        // Wait until every fiber has started and parked.
        while threadlet::runtime::dump()
            .iter()
            .filter(|f| f.state == "parked")
            .count()
            < n
        {
            threadlet::fiber::sleep(Duration::from_millis(20));
        }
        let parked = start.elapsed();
        let rss = rss_kib().saturating_sub(rss_before);
        let maps = map_count();
        println!("fibers:            {n}");
        println!(
            "spawn time:        {:.3} s ({:.0} ns per fiber)",
            spawned.as_secs_f64(),
            spawned.as_nanos() as f64 / n as f64
        );
        println!("all parked after:  {:.3} s", parked.as_secs_f64());
        println!(
            "RSS growth:        {} MiB ({:.2} KiB per parked fiber)",
            rss / 1024,
            rss as f64 / n as f64
        );
        println!(
            "memory mappings:   {maps} (was {maps_before}; vm.max_map_count {})",
            std::fs::read_to_string("/proc/sys/vm/max_map_count")
                .unwrap_or_default()
                .trim()
        );
        let wake = Instant::now();
        go.store(true, Ordering::Release);
        for h in &handles {
            h.fiber().unpark();
        }
        for h in handles {
            h.join().unwrap();
        }
        println!("wake + join time:  {:.3} s", wake.elapsed().as_secs_f64());
        println!(
            "alive after join:  {}",
            threadlet::runtime::stats().fibers_alive
        );
    });
}
