//! RELIABILITY row 18 (fork): a forked child that uses the parent's runtime
//! gets a clear error instead of hanging; a fresh runtime in the child works.

use threadlet::Runtime;

#[test]
fn forked_child_gets_a_clear_error() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    assert_eq!(rt.block_on(|| 1), 1);
    let handle = rt.handle();
    // SAFETY: the child only calls threadlet (which allocates and spawns
    // threads, fine in a child of this test process) and then _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let old = handle.spawn_with(threadlet::fiber::Builder::new(), || 1);
        let code = match old {
            Err(e) if e.to_string().contains("fork") => {
                // A new runtime in the child works.
                if threadlet::run(|| threadlet::spawn(|| 2).join().unwrap()) == 2 {
                    0
                } else {
                    3
                }
            }
            Err(_) => 1,
            Ok(_) => 2,
        };
        // SAFETY: leave the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "child died: {status}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "child exit code");
}

/// Forks, runs `child` in the child (its return value is the exit code; a
/// panic is exit code 101), and returns the child's wait status.
fn in_forked_child(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child runs `child` and leaves with `_exit`, never returning
    // into the test harness; what `child` calls (threadlet, allocation,
    // thread creation) works in a child of this process.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
        // SAFETY: leave the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    status
}

/// Row 18: a child that drops the runtime it inherited (its worker and
/// monitor threads do not exist there) releases what it can and returns;
/// the parent's runtime is untouched.
#[test]
fn forked_child_can_drop_the_inherited_runtime() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    assert_eq!(rt.block_on(|| 1), 1);
    // A fiber parked in the parent at the time of the fork.
    let (tx, rx) = threadlet::sync::oneshot::channel::<u32>();
    let waiter = rt.spawn(move || rx.recv().unwrap());
    let mut rt = Some(rt);
    let status = in_forked_child(|| {
        drop(rt.take());
        0
    });
    assert!(
        libc::WIFEXITED(status),
        "child died dropping the inherited runtime: signal {}",
        libc::WTERMSIG(status)
    );
    assert_eq!(libc::WEXITSTATUS(status), 0, "child exit code");
    tx.send(7).unwrap();
    assert_eq!(waiter.join().unwrap(), 7);
    drop(rt);
}

/// Row 18: `Signals` created in a forked child is delivered there, even when
/// the parent's signal dispatcher was running at the fork.
#[test]
fn signals_work_in_a_forked_child() {
    let parent = threadlet::signal::Signals::new(&[libc::SIGUSR1]).unwrap();
    let status = in_forked_child(|| {
        let signals = threadlet::signal::Signals::new(&[libc::SIGUSR2]).unwrap();
        // SAFETY: sends a handled signal to this (child) process.
        unsafe { libc::kill(libc::getpid(), libc::SIGUSR2) };
        match signals.wait_timeout(std::time::Duration::from_secs(20)) {
            Ok(sig) if sig == libc::SIGUSR2 => 0,
            Ok(_) => 2,
            Err(_) => 3,
        }
    });
    assert!(libc::WIFEXITED(status), "child died: {status}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the child's signal was not delivered (3: timed out)"
    );
    assert_eq!(
        parent.try_next(),
        None,
        "the child's signal leaked to the parent"
    );
}
