//! RELIABILITY row 12: a fiber's stack overflow is reported with the fiber's
//! name, id and stack size, then the process aborts; other faults keep their
//! default behaviour. Subprocess tests: the binary re-runs itself.

mod common;

use std::os::unix::process::ExitStatusExt;

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let buf = std::hint::black_box([depth as u8; 512]);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + u64::from(buf[7])
}

#[test]
fn row12_overflow_names_the_fiber_and_aborts() {
    if common::child_role().as_deref() == Some("overflow") {
        threadlet::run(|| {
            let h = threadlet::fiber::Builder::new()
                .name("deep".to_owned())
                .spawn(|| {
                    // Printed by the fiber itself before it recurses: the
                    // overflow aborts the process, so a print from the
                    // spawner could come too late (it raced on a loaded CI).
                    eprintln!(
                        "spawned fiber id {}",
                        threadlet::fiber::current().id().as_u64()
                    );
                    recurse(0)
                })
                .unwrap();
            let _ = h.join();
        });
        unreachable!("the overflow must abort the process");
    }
    let out = common::run_child("row12_overflow_names_the_fiber_and_aborts", "overflow", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "stderr: {stderr}");
    let id: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("spawned fiber id "))
        .and_then(|v| v.trim().parse().ok())
        .expect("child printed the fiber id");
    let expected = format!("fiber 'deep' (id {id}) has overflowed its stack of 256 KiB");
    assert!(stderr.contains(&expected), "stderr: {stderr}");
}

#[test]
fn row12_custom_stack_size_is_reported() {
    if common::child_role().as_deref() == Some("overflow64") {
        threadlet::run(|| {
            let h = threadlet::fiber::Builder::new()
                .stack_size(64 * 1024)
                .spawn(|| recurse(0))
                .unwrap();
            let _ = h.join();
        });
        unreachable!();
    }
    let out = common::run_child("row12_custom_stack_size_is_reported", "overflow64", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "stderr: {stderr}");
    assert!(
        stderr.contains("fiber '<unnamed>' (id ")
            && stderr.contains("overflowed its stack of 64 KiB"),
        "stderr: {stderr}"
    );
}

fn null_read() -> u8 {
    // SAFETY: deliberately invalid: this test checks that a wild read
    // still ends the process with SIGSEGV.
    unsafe { std::ptr::read_volatile(std::hint::black_box(std::ptr::null::<u8>())) }
}

#[test]
fn row12_other_segfaults_stay_segfaults() {
    match common::child_role().as_deref() {
        Some("null-thread") => {
            threadlet::run(|| ());
            null_read();
            unreachable!();
        }
        Some("null-fiber") => {
            threadlet::run(null_read);
            unreachable!();
        }
        _ => {}
    }
    for role in ["null-thread", "null-fiber"] {
        let out = common::run_child("row12_other_segfaults_stay_segfaults", role, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{role}: {stderr}");
        assert!(!stderr.contains("overflowed"), "{role}: {stderr}");
    }
}
