//! Semantics of `Barrier`, `OnceLock`, `Semaphore` and `WaitGroup`, from
//! fibers, threads and both at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use threadlet::fiber::Cancelled;
use threadlet::sync::{mpmc, Barrier, OnceLock, Semaphore, WaitGroup};
use threadlet::Runtime;

fn rt() -> Runtime {
    Runtime::builder().workers(2).build().unwrap()
}

// ---------------------------------------------------------------- Barrier

#[test]
fn barrier_has_one_leader_per_round_across_fibers_and_threads() {
    let rt = rt();
    let barrier = Arc::new(Barrier::new(4));
    let rounds = 50;
    let leaders = Arc::new(AtomicUsize::new(0));
    let mut fibers = Vec::new();
    let mut threads = Vec::new();
    for i in 0..4 {
        let (b, l) = (barrier.clone(), leaders.clone());
        let body = move || {
            for _ in 0..rounds {
                if b.wait().is_leader() {
                    l.fetch_add(1, Ordering::SeqCst);
                }
            }
        };
        if i % 2 == 0 {
            fibers.push(rt.spawn(body));
        } else {
            threads.push(thread::spawn(body));
        }
    }
    fibers.into_iter().for_each(|h| h.join().unwrap());
    threads.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(leaders.load(Ordering::SeqCst), rounds);
}

#[test]
fn barrier_rounds_do_not_mix() {
    // Nobody passes round r+1 before everybody passed round r.
    let barrier = Arc::new(Barrier::new(3));
    let passed = Arc::new(AtomicUsize::new(0));
    let (b2, p2) = (barrier.clone(), passed.clone());
    rt().block_on(move || {
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let (b, p) = (b2.clone(), p2.clone());
                threadlet::spawn(move || {
                    for round in 0..20 {
                        b.wait();
                        let seen = p.fetch_add(1, Ordering::SeqCst);
                        assert!(
                            seen >= round * 3 && seen < (round + 1) * 3,
                            "round {round} saw {seen}"
                        );
                        b.wait();
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
    });
    assert_eq!(passed.load(Ordering::SeqCst), 60);
}

#[test]
fn barrier_of_one_or_zero_never_waits() {
    assert!(Barrier::new(1).wait().is_leader());
    assert!(Barrier::new(0).wait().is_leader());
}

// ---------------------------------------------------------------- OnceLock

#[test]
fn oncelock_initialises_once_under_contention() {
    let rt = rt();
    let cell = Arc::new(OnceLock::new());
    let inits = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(40 + 4));
    let mut fibers = Vec::new();
    let mut threads = Vec::new();
    for i in 0..44 {
        let (c, n, s) = (cell.clone(), inits.clone(), start.clone());
        let body = move || {
            s.wait();
            *c.get_or_init(|| {
                n.fetch_add(1, Ordering::SeqCst);
                threadlet::yield_now(); // make the others wait for us
                i
            })
        };
        if i < 40 {
            fibers.push(rt.spawn(body));
        } else {
            threads.push(thread::spawn(body));
        }
    }
    let mut values: Vec<usize> = fibers.into_iter().map(|h| h.join().unwrap()).collect();
    values.extend(threads.into_iter().map(|h| h.join().unwrap()));
    assert_eq!(inits.load(Ordering::SeqCst), 1);
    assert!(values.iter().all(|v| *v == values[0]));
    assert_eq!(cell.get(), Some(&values[0]));
}

#[test]
fn oncelock_set_get_take() {
    let mut cell = OnceLock::new();
    assert_eq!(cell.get(), None);
    assert_eq!(cell.set(1), Ok(()));
    assert_eq!(cell.set(2), Err(2));
    assert_eq!(cell.get(), Some(&1));
    *cell.get_mut().unwrap() += 1;
    assert_eq!(cell.take(), Some(2));
    assert_eq!(cell.get(), None);
    assert_eq!(OnceLock::from(5).into_inner(), Some(5));
    assert_eq!(
        format!("{:?}", OnceLock::<i32>::new()),
        "OnceLock(<uninit>)"
    );
}

#[test]
fn oncelock_panicking_init_leaves_it_empty() {
    let cell = Arc::new(OnceLock::new());
    let c2 = cell.clone();
    let r = threadlet::run(move || {
        let c3 = c2.clone();
        let r = threadlet::spawn(move || *c3.get_or_init(|| panic!("init fails"))).join();
        assert!(r.is_err());
        assert_eq!(c2.get(), None);
        *c2.get_or_init(|| 9)
    });
    assert_eq!(r, 9);
    assert_eq!(cell.get(), Some(&9));
}

#[test]
fn oncelock_wait_returns_value_set_elsewhere() {
    let rt = rt();
    let cell = Arc::new(OnceLock::new());
    let c2 = cell.clone();
    let waiter = rt.spawn(move || *c2.wait());
    thread::spawn({
        let c = cell.clone();
        move || c.set(42).unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(waiter.join().unwrap(), 42);
}

static GLOBAL: OnceLock<String> = OnceLock::new();

#[test]
fn oncelock_static() {
    assert_eq!(
        threadlet::run(|| GLOBAL.get_or_init(|| "x".into()).clone()),
        "x"
    );
}

// ---------------------------------------------------------------- Semaphore

#[test]
fn semaphore_bounds_concurrency() {
    let sem = Arc::new(Semaphore::new(3));
    let inside = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let (s2, i2, m2) = (sem.clone(), inside.clone(), max.clone());
    rt().block_on(move || {
        let hs: Vec<_> = (0..30)
            .map(|_| {
                let (s, i, m) = (s2.clone(), i2.clone(), m2.clone());
                threadlet::spawn(move || {
                    for _ in 0..20 {
                        let _p = s.acquire();
                        let now = i.fetch_add(1, Ordering::SeqCst) + 1;
                        m.fetch_max(now, Ordering::SeqCst);
                        threadlet::yield_now();
                        i.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
    });
    assert!(max.load(Ordering::SeqCst) <= 3);
    assert!(max.load(Ordering::SeqCst) >= 1);
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn semaphore_try_acquire_and_permits() {
    let sem = Semaphore::new(1);
    let p = sem.try_acquire().unwrap();
    assert!(sem.try_acquire().is_none());
    assert_eq!(sem.available_permits(), 0);
    drop(p);
    assert_eq!(sem.available_permits(), 1);
    sem.add_permits(2);
    assert_eq!(sem.available_permits(), 3);
    sem.acquire().forget();
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn semaphore_acquire_timeout_expires() {
    let sem = Semaphore::new(0);
    let start = Instant::now();
    assert!(sem.acquire_timeout(Duration::from_millis(20)).is_none());
    assert!(start.elapsed() >= Duration::from_millis(20));
    threadlet::run(|| {
        let sem = Semaphore::new(0);
        assert!(sem.acquire_timeout(Duration::from_millis(20)).is_none());
        assert_eq!(sem.available_permits(), 0);
    });
}

#[test]
fn semaphore_add_permits_wakes_waiters() {
    let rt = rt();
    let sem = Arc::new(Semaphore::new(0));
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let s = sem.clone();
            rt.spawn(move || s.acquire().forget())
        })
        .collect();
    let t = {
        let s = sem.clone();
        thread::spawn(move || s.acquire().forget())
    };
    sem.add_permits(6);
    waiters.into_iter().for_each(|h| h.join().unwrap());
    t.join().unwrap();
    assert_eq!(sem.available_permits(), 0);
}

#[test]
fn cancelled_semaphore_waiter_does_not_take_a_permit() {
    let rt = rt();
    let sem = Arc::new(Semaphore::new(0));
    let (started_tx, started_rx) = mpmc::bounded::<()>(0);
    let s2 = sem.clone();
    let waiter = rt.spawn(move || {
        started_tx.send(()).unwrap();
        s2.acquire().forget();
    });
    started_rx.recv().unwrap();
    waiter.cancel();
    assert!(waiter
        .join()
        .unwrap_err()
        .downcast_ref::<Cancelled>()
        .is_some());
    sem.add_permits(1);
    assert_eq!(sem.available_permits(), 1);
}

// ---------------------------------------------------------------- WaitGroup

#[test]
fn waitgroup_waits_for_all_clones() {
    let rt = rt();
    let done = Arc::new(AtomicUsize::new(0));
    let wg = WaitGroup::new();
    for i in 0..20 {
        let (wg, d) = (wg.clone(), done.clone());
        let body = move || {
            threadlet::yield_now();
            d.fetch_add(1, Ordering::SeqCst);
            drop(wg);
        };
        if i % 5 == 0 {
            thread::spawn(body);
        } else {
            rt.spawn(body);
        }
    }
    wg.wait();
    assert_eq!(done.load(Ordering::SeqCst), 20);
}

#[test]
fn waitgroup_wait_from_a_fiber_and_debug() {
    let n = threadlet::run(|| {
        let wg = WaitGroup::new();
        let count = Arc::new(AtomicUsize::new(0));
        for _ in 0..8 {
            let (wg, c) = (wg.clone(), count.clone());
            threadlet::spawn(move || {
                c.fetch_add(1, Ordering::SeqCst);
                drop(wg);
            });
        }
        wg.wait();
        count.load(Ordering::SeqCst)
    });
    assert_eq!(n, 8);
    let wg = WaitGroup::new();
    let _c = wg.clone();
    assert_eq!(format!("{wg:?}"), "WaitGroup { count: 2 }");
}

#[test]
fn thread_safety_markers_match_std() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<threadlet::sync::Mutex<Vec<u8>>>();
    send_sync::<threadlet::sync::RwLock<Vec<u8>>>();
    send_sync::<threadlet::sync::Condvar>();
    send_sync::<Barrier>();
    send_sync::<OnceLock<Vec<u8>>>();
    send_sync::<Semaphore>();
    send_sync::<WaitGroup>();
    send_sync::<mpmc::Sender<Vec<u8>>>();
    send_sync::<mpmc::Receiver<Vec<u8>>>();
    send_sync::<threadlet::sync::mpsc::Sender<Vec<u8>>>();
    send_sync::<threadlet::sync::mpsc::SyncSender<Vec<u8>>>();
    send::<threadlet::sync::mpsc::Receiver<Vec<u8>>>();
    send::<threadlet::sync::oneshot::Sender<Vec<u8>>>();
    send::<threadlet::sync::oneshot::Receiver<Vec<u8>>>();
}
