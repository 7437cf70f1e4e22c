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
