//! Idle blocking-pool threads exit (own binary: pool settings are process-wide).
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn idle_pool_threads_retire() {
    threadlet::set_blocking_idle_timeout(Duration::from_millis(50));
    let inside = threadlet::run(|| threadlet::unblock(threadlet::blocking_threads));
    assert!(inside >= 1, "a call runs on a pool thread");
    let deadline = Instant::now() + Duration::from_secs(10);
    while threadlet::blocking_threads() > 0 {
        assert!(Instant::now() < deadline, "idle pool threads did not exit");
        thread::sleep(Duration::from_millis(10));
    }
}
