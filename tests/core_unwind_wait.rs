//! RELIABILITY row 21: a destructor that waits while its fiber unwinds never
//! hangs the runtime silently. One worker each, in child processes bounded by
//! a deadline, so a hang fails the test instead of stalling CI.
//!
//! - (a) shutdown with a fiber holding a `threadlet::sync::Mutex` across a
//!   sleep and a sibling owning a guard whose `Drop` locks it finishes, in
//!   both unwinding orders;
//! - (b) a fiber that panics owning a guard whose `Drop` locks a mutex a
//!   sibling holds across a sleep, and (c) one whose guard's `Drop` joins a
//!   sleeping sibling, cannot finish (the sibling is not unwinding and cannot
//!   run on the blocked worker; see `park.rs`): the wait is reported on
//!   stderr within the stall threshold, naming the fiber and what it waits
//!   for, and dropping the runtime then still finishes.

mod common;

use std::sync::{mpsc, Arc};
use std::time::Duration;

use threadlet::sync::Mutex;
use threadlet::{JoinHandle, Runtime};

const FOREVER: Duration = Duration::from_secs(3600);
const DEADLINE: Duration = Duration::from_secs(60);

/// Locks the mutex in its destructor (ignoring poison).
struct LocksOnDrop(Arc<Mutex<u32>>);
impl Drop for LocksOnDrop {
    fn drop(&mut self) {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *v += 1;
    }
}

/// Joins a fiber in its destructor.
struct JoinsOnDrop(Option<JoinHandle<()>>);
impl Drop for JoinsOnDrop {
    fn drop(&mut self) {
        let _ = self.0.take().unwrap().join();
    }
}

fn one_worker() -> Runtime {
    Runtime::builder()
        .workers(1)
        .stall_threshold(Duration::from_millis(200))
        .build()
        .unwrap()
}

/// (a): `holder_first` decides which fiber shutdown cancels (and so unwinds)
/// first: fibers are cancelled in the order they started.
fn shutdown_child(holder_first: bool) {
    let rt = one_worker();
    let m = Arc::new(Mutex::new(0));
    let (ready_tx, ready) = mpsc::channel::<()>();
    let holder = {
        let (m, ready_tx) = (m.clone(), ready_tx.clone());
        move || {
            let _g = m.lock().unwrap();
            ready_tx.send(()).unwrap();
            threadlet::fiber::sleep(FOREVER);
        }
    };
    let waiter = {
        let guard = LocksOnDrop(m.clone());
        move || {
            let _guard = guard;
            ready_tx.send(()).unwrap();
            threadlet::fiber::sleep(FOREVER);
        }
    };
    if holder_first {
        rt.spawn(holder);
        ready.recv().unwrap();
        rt.spawn(waiter);
    } else {
        rt.spawn(waiter);
        ready.recv().unwrap();
        rt.spawn(holder);
    }
    ready.recv().unwrap();
    drop(rt);
    println!("DROPPED {}", *m.lock().unwrap_or_else(|e| e.into_inner()));
}

fn check_shutdown(test: &str) {
    let out = common::run_child_watched(test, "child", DEADLINE, |_| false);
    assert!(
        out.status.is_some_and(|s| s.success()),
        "shutdown hung or failed: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.contains("DROPPED 1"), "stdout: {}", out.stdout);
}

#[test]
fn row21a_shutdown_with_drop_waiting_on_a_sibling_lock_waiter_first() {
    if common::child_role().is_some() {
        return shutdown_child(false);
    }
    check_shutdown("row21a_shutdown_with_drop_waiting_on_a_sibling_lock_waiter_first");
}

#[test]
fn row21a_shutdown_with_drop_waiting_on_a_sibling_lock_holder_first() {
    if common::child_role().is_some() {
        return shutdown_child(true);
    }
    check_shutdown("row21a_shutdown_with_drop_waiting_on_a_sibling_lock_holder_first");
}

/// (b) and (c): a fiber named `panicker` panics while its destructor waits
/// for a sibling on its worker. The child waits for the parent's `go` (sent
/// once the report is out), then drops the runtime.
fn panic_child(join: bool) {
    let rt = one_worker();
    let m = Arc::new(Mutex::new(0));
    let (ready_tx, ready) = mpsc::channel::<()>();
    let m2 = m.clone();
    let sibling = rt.spawn(move || {
        let _g = m2.lock().unwrap();
        ready_tx.send(()).unwrap();
        threadlet::fiber::sleep(FOREVER);
    });
    ready.recv().unwrap();
    let panicker = if join {
        let guard = JoinsOnDrop(Some(sibling));
        rt.handle()
            .spawn_with(
                threadlet::fiber::Builder::new().name("panicker".into()),
                move || {
                    let _guard = guard;
                    panic!("on purpose");
                },
            )
            .unwrap()
    } else {
        let guard = LocksOnDrop(m.clone());
        rt.handle()
            .spawn_with(
                threadlet::fiber::Builder::new().name("panicker".into()),
                move || {
                    let _guard = guard;
                    panic!("on purpose");
                },
            )
            .unwrap()
    };
    // On stdout: the worker's panic message goes to stderr at the same time
    // and could split a line written there.
    println!("PANICKER {}", panicker.fiber().id().as_u64());
    common::wait_for_go();
    drop(rt);
    assert!(panicker.join().is_err());
    println!("DROPPED");
}

fn check_reported(test: &str, waits_for: &str) {
    let out = common::run_child_watched(test, "child", DEADLINE, |line| {
        line.contains("'panicker'") && line.contains("unwinding")
    });
    let id = out
        .stdout
        .lines()
        .find_map(|l| l.split_once("PANICKER ").map(|(_, id)| id.trim()))
        .expect("child printed the fiber id")
        .to_owned();
    let report = out
        .stderr
        .lines()
        .find(|l| l.contains("'panicker'") && l.contains("unwinding"))
        .unwrap_or_else(|| panic!("no report of the stuck destructor; stderr:\n{}", out.stderr));
    assert!(
        report.contains(&format!("(id {id})")) && report.contains(waits_for),
        "the report must name the fiber and what it waits for: {report}"
    );
    assert!(
        out.status.is_some_and(|s| s.success()) && out.stdout.contains("DROPPED"),
        "dropping the runtime after the report hung or failed: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        out.stdout,
        out.stderr
    );
}

#[test]
fn row21b_panic_with_drop_locking_a_sibling_held_mutex_is_reported() {
    if common::child_role().is_some() {
        return panic_child(false);
    }
    check_reported(
        "row21b_panic_with_drop_locking_a_sibling_held_mutex_is_reported",
        "mutex lock",
    );
}

#[test]
fn row21c_panic_with_drop_joining_a_sleeping_sibling_is_reported() {
    if common::child_role().is_some() {
        return panic_child(true);
    }
    check_reported(
        "row21c_panic_with_drop_joining_a_sleeping_sibling_is_reported",
        "join",
    );
}

/// The mechanism behind (a), outside shutdown: while a panicking fiber's
/// destructor blocks its worker, a sibling that gets cancelled (here from a
/// plain thread) runs nested, unwinds, releases the lock, and the
/// destructor completes.
#[test]
fn row21_cancelled_sibling_runs_while_an_unwinding_fiber_blocks_its_worker() {
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = one_worker();
        let m = Arc::new(Mutex::new(0));
        let (ready_tx, ready) = mpsc::channel::<()>();
        let m2 = m.clone();
        let holder = rt.spawn(move || {
            let _g = m2.lock().unwrap();
            ready_tx.send(()).unwrap();
            threadlet::fiber::sleep(FOREVER);
        });
        ready.recv().unwrap();
        let guard = LocksOnDrop(m.clone());
        let panicker = rt.spawn(move || {
            let _guard = guard;
            panic!("on purpose");
        });
        // Wait (bounded by the watchdog below) until the destructor blocks.
        let id = panicker.fiber().id();
        while !rt
            .handle()
            .dump()
            .iter()
            .any(|f| f.id == id && f.state.contains("mutex lock"))
        {
            std::thread::yield_now();
        }
        holder.cancel();
        let holder = holder.join().unwrap_err();
        let panicked = panicker.join().unwrap_err();
        let locked = *m.lock().unwrap_or_else(|e| e.into_inner());
        let _ = done_tx.send((
            holder.is::<threadlet::fiber::Cancelled>(),
            panicked.downcast_ref::<&str>().copied(),
            locked,
            m.is_poisoned(),
        ));
    });
    let (cancelled, payload, locked, poisoned) = done
        .recv_timeout(DEADLINE)
        .expect("the unwinding fiber's destructor never got the lock");
    assert!(cancelled);
    assert_eq!(payload, Some("on purpose"));
    assert_eq!(locked, 1, "the destructor ran once, with the lock");
    assert!(
        poisoned,
        "the holder was cancelled inside its critical section"
    );
}
