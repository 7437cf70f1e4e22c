//! RELIABILITY rows 8 and 24: with no logger installed, a worker stuck
//! behind a std lock held across a park is reported on stderr, naming the
//! fiber and the fix. In a child process (the stuck worker never recovers),
//! which the parent kills once it has read the report or given up.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use threadlet::Runtime;

/// Child: one fiber parks while holding a `std::sync::Mutex`; a sibling on
/// the same worker blocks on it, and with it the worker, for good.
fn child_deadlock() -> ! {
    assert_eq!(log::max_level(), log::LevelFilter::Off, "a logger is set");
    let rt = Runtime::builder().workers(2).build().unwrap();
    let lock = Arc::new(Mutex::new(()));
    let _holder = rt.handle().spawn_with(
        threadlet::fiber::Builder::new().name("holds-std-lock".into()),
        move || {
            let guard = lock.lock().unwrap();
            let l2 = lock.clone();
            threadlet::fiber::Builder::new()
                .name("waits-on-std-lock".into())
                .spawn_local(move || drop(l2.lock().unwrap()))
                .unwrap();
            // Parks with the std lock held: the sibling runs and blocks the
            // worker thread in the kernel, so this fiber never wakes again.
            threadlet::time::sleep(Duration::from_millis(50));
            drop(guard);
        },
    );
    // Stay alive until the parent kills us.
    loop {
        std::thread::park();
    }
}

#[test]
fn row24_stall_without_logger_is_reported_on_stderr() {
    if common::child_role().as_deref() == Some("std-lock-deadlock") {
        child_deadlock();
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "row24_stall_without_logger_is_reported_on_stderr",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(common::CHILD_ENV, "std-lock-deadlock")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start child");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let mut report = None;
    while report.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if line.contains("'waits-on-std-lock'") {
                    report = Some(line.clone());
                }
                seen.push(line);
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let report = report.unwrap_or_else(|| {
        panic!("no stall report naming the fiber on stderr within 20 s; stderr was: {seen:#?}")
    });
    assert!(report.contains("threadlet::sync"), "{report}");
    assert!(report.contains("unblock"), "{report}");
    assert!(report.contains("worker"), "{report}");
    assert!(report.contains(" ms "), "{report}");
    // The kernel says the worker sleeps on a futex: the report says so.
    assert!(report.contains("futex"), "{report}");
}
