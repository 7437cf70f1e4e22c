//! RELIABILITY row 19: memory-map exhaustion. Far more than 32k fibers park
//! at once at the default `vm.max_map_count`; with the mprotect fallback
//! forced, the cap comes back as an `io::Error` naming `vm.max_map_count`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use threadlet::runtime::StackGuard;
use threadlet::Runtime;

fn madvise_guard_supported() -> bool {
    // MADV_GUARD_INSTALL arrived in Linux 6.13.
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (6, 13)
}

#[test]
fn row19_100k_parked_fibers_at_default_map_count() {
    if !madvise_guard_supported() {
        eprintln!("skipped: kernel without MADV_GUARD_INSTALL");
        return;
    }
    let n = 100_000;
    let maps_before = common::map_count();
    let rt = Runtime::builder().workers(2).build().unwrap();
    let go = Arc::new(AtomicBool::new(false));
    let g = go.clone();
    let (handles, maps_parked) = rt.block_on(move || {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let g = g.clone();
                threadlet::spawn(move || {
                    while !g.load(Ordering::Acquire) {
                        threadlet::fiber::park();
                    }
                })
            })
            .collect();
        // Let every fiber start and park.
        while threadlet::runtime::dump().len() < n + 1 {
            threadlet::fiber::sleep(std::time::Duration::from_millis(5));
        }
        (handles, common::map_count())
    });
    assert!(
        maps_parked - maps_before < 2_000,
        "{n} parked fibers cost {} mappings",
        maps_parked - maps_before
    );
    go.store(true, Ordering::Release);
    for h in &handles {
        h.fiber().unpark();
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(rt.stats().fibers_alive, 0);
}

#[test]
fn row19_mprotect_cap_is_an_error_not_a_crash() {
    if common::child_role().as_deref() == Some("cap") {
        let rt = Runtime::builder()
            .workers(1)
            .stack_guard(StackGuard::Mprotect)
            .build()
            .unwrap();
        let go = Arc::new(AtomicBool::new(false));
        let g = go.clone();
        let outcome = rt.block_on(move || {
            let mut handles = Vec::new();
            for i in 0..70_000usize {
                let g2 = g.clone();
                match threadlet::fiber::Builder::new().spawn(move || {
                    while !g2.load(Ordering::Acquire) {
                        threadlet::fiber::park();
                    }
                }) {
                    Ok(h) => handles.push(h),
                    Err(e) => {
                        g.store(true, Ordering::Release);
                        for h in &handles {
                            h.fiber().unpark();
                        }
                        let n = handles.len();
                        for h in handles {
                            h.join().unwrap();
                        }
                        return format!("ERR after {i} spawns ({n} alive): {e}");
                    }
                }
            }
            "NO ERROR".to_owned()
        });
        println!("OUTCOME {outcome}");
        return;
    }
    let out = common::run_child("row19_mprotect_cap_is_an_error_not_a_crash", "cap", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child crashed: {:?}\n{stderr}",
        out.status
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("OUTCOME ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no outcome: {stdout}\n{stderr}"));
    assert!(line.contains("ERR after"), "{line}");
    assert!(line.contains("vm.max_map_count"), "{line}");
}
