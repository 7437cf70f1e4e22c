//! RELIABILITY rows 8 and 14: the monitor reports a worker stuck behind one
//! fiber (a CPU loop, or a std lock held across a park) and other workers
//! keep taking new work.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use threadlet::Runtime;

/// Captures the runtime's log warnings.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.level() <= log::Level::Warn {
            self.0.lock().unwrap().push(record.args().to_string());
            eprintln!("LOG {}", record.args());
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

fn install_logger() {
    let _ = log::set_logger(&CAPTURE);
    log::set_max_level(log::LevelFilter::Warn);
}

/// Row 14: one fiber spins for 2 s; the stall is reported (stats and a log
/// line naming the fiber), and new fibers keep running meanwhile.
#[test]
fn row14_cpu_loop_is_reported_and_new_work_flows() {
    install_logger();
    let rt = Runtime::builder().workers(2).build().unwrap();
    let spinning = Arc::new(AtomicBool::new(true));
    let s = spinning.clone();
    let spinner = rt
        .handle()
        .spawn_with(
            threadlet::fiber::Builder::new().name("spinner".into()),
            move || {
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(2) {
                    std::hint::spin_loop();
                }
                s.store(false, Ordering::Release);
            },
        )
        .unwrap();
    // New fibers, spawned while the spinner holds its worker, all complete.
    let mut done_during_spin = 0;
    for round in 0..20 {
        let joins: Vec<_> = (0..50).map(|i| rt.spawn(move || i * round)).collect();
        for (i, j) in joins.into_iter().enumerate() {
            assert_eq!(j.join().unwrap(), i * round);
        }
        if spinning.load(Ordering::Acquire) {
            done_during_spin += 1;
        }
    }
    assert!(
        done_during_spin > 0,
        "no new fiber ran while the spinner held its worker"
    );
    spinner.join().unwrap();
    assert!(
        rt.stats().stalls >= 1,
        "stall not counted: {:?}",
        rt.stats()
    );
    let logs = CAPTURE.0.lock().unwrap();
    assert!(
        logs.iter()
            .any(|l| l.contains("'spinner'") && l.contains("worker")),
        "no warning naming the fiber: {logs:?}"
    );
}

/// Row 8: a fiber parks while holding a std Mutex and a sibling on the same
/// worker blocks on it: the worker is stuck for good (documented), but the
/// monitor reports it instead of staying silent. In a subprocess, which the
/// parent kills once the report is out.
#[test]
fn row8_std_lock_across_park_is_reported() {
    if common::child_role().as_deref() == Some("std-lock") {
        install_logger();
        let rt = Runtime::builder().workers(2).build().unwrap();
        let lock = Arc::new(Mutex::new(()));
        rt.spawn(move || {
            let guard = lock.lock().unwrap();
            let l2 = lock.clone();
            threadlet::fiber::Builder::new()
                .name("blocked-on-std-lock".into())
                .spawn_local(move || drop(l2.lock().unwrap()))
                .unwrap();
            threadlet::fiber::sleep(Duration::from_millis(50));
            drop(guard);
        });
        // Wait for the log line, not just the counter: the monitor counts
        // the stall before it logs, and exiting between the two would lose
        // the line the parent looks for.
        let deadline = Instant::now() + Duration::from_secs(60);
        let reported = || rt.stats().stalls > 0 && !CAPTURE.0.lock().unwrap().is_empty();
        while !reported() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        println!("STALLS {}", rt.stats().stalls);
        std::process::exit(0);
    }
    let out = common::run_child("row8_std_lock_across_park_is_reported", "std-lock", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("STALLS 1"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains("'blocked-on-std-lock'"), "stderr: {stderr}");
}
