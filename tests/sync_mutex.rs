//! std's documented semantics of `Mutex`, `RwLock` and `Condvar`, case by
//! case, from fibers, from plain threads, and across the two.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use threadlet::fiber::Cancelled;
use threadlet::sync::{mpmc, Barrier, Condvar, Mutex, RwLock, TryLockError};
use threadlet::Runtime;

fn rt() -> Runtime {
    Runtime::builder().workers(2).build().unwrap()
}

// ---------------------------------------------------------------- Mutex

static STATIC_COUNTER: Mutex<u64> = Mutex::new(0);

#[test]
fn mutex_new_is_const_for_statics() {
    rt().block_on(|| {
        let hs: Vec<_> = (0..10)
            .map(|_| threadlet::spawn(|| *STATIC_COUNTER.lock().unwrap() += 1))
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
    });
    assert_eq!(*STATIC_COUNTER.lock().unwrap(), 10);
}

#[test]
fn mutex_excludes_fibers() {
    let m = Arc::new(Mutex::new((0u64, 0u64)));
    let m2 = m.clone();
    rt().block_on(move || {
        let hs: Vec<_> = (0..16)
            .map(|_| {
                let m = m2.clone();
                threadlet::spawn(move || {
                    for _ in 0..200 {
                        let mut g = m.lock().unwrap();
                        let a = g.0;
                        threadlet::yield_now(); // others run while we hold it
                        g.0 = a + 1;
                        g.1 += 1;
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
    });
    assert_eq!(*m.lock().unwrap(), (3200, 3200));
}

#[test]
fn thread_waits_for_mutex_held_by_fiber() {
    let rt = rt();
    let m = Arc::new(Mutex::new(0));
    let (locked_tx, locked_rx) = mpmc::bounded::<()>(0);
    let (go_tx, go_rx) = mpmc::bounded::<()>(0);
    let m2 = m.clone();
    let fiber = rt.spawn(move || {
        let mut g = m2.lock().unwrap();
        locked_tx.send(()).unwrap();
        go_rx.recv().unwrap(); // the thread is about to lock
        for _ in 0..10 {
            threadlet::yield_now();
        }
        *g = 1;
    });
    locked_rx.recv().unwrap();
    let m3 = m.clone();
    let t = thread::spawn(move || {
        go_tx.send(()).unwrap();
        *m3.lock().unwrap() // blocks until the fiber's guard drops
    });
    assert_eq!(
        t.join().unwrap(),
        1,
        "thread saw the data before the fiber released it"
    );
    fiber.join().unwrap();
}

#[test]
fn fiber_waits_for_mutex_held_by_thread() {
    let rt = rt();
    let m = Arc::new(Mutex::new(0));
    let g = m.lock().unwrap();
    let m2 = m.clone();
    let (started_tx, started_rx) = mpmc::bounded::<()>(0);
    let fiber = rt.spawn(move || {
        started_tx.send(()).unwrap();
        *m2.lock().unwrap()
    });
    started_rx.recv().unwrap();
    let mut g = g;
    *g = 7;
    drop(g);
    assert_eq!(fiber.join().unwrap(), 7);
}

#[test]
fn try_lock_would_block_while_held() {
    let m = Mutex::new(1);
    let g = m.lock().unwrap();
    assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    drop(g);
    assert_eq!(*m.try_lock().unwrap(), 1);
}

#[test]
fn try_lock_from_other_fiber_would_block() {
    let m = Arc::new(Mutex::new(()));
    let m2 = m.clone();
    rt().block_on(move || {
        let _g = m2.lock().unwrap();
        let m3 = m2.clone();
        let busy = threadlet::spawn(move || matches!(m3.try_lock(), Err(TryLockError::WouldBlock)))
            .join()
            .unwrap();
        assert!(busy);
    });
    assert!(m.try_lock().is_ok());
}

fn poison(m: &Arc<Mutex<i32>>) {
    let m2 = m.clone();
    let r = rt().block_on(move || {
        threadlet::spawn(move || {
            let mut g = m2.lock().unwrap();
            *g = 5;
            panic!("poison on purpose");
        })
        .join()
    });
    assert!(r.is_err());
}

#[test]
fn panic_while_locked_poisons() {
    let m = Arc::new(Mutex::new(0));
    poison(&m);
    assert!(m.is_poisoned());
    let err = m.lock().unwrap_err();
    assert_eq!(
        **err.get_ref(),
        5,
        "the poisoned guard still gives the data"
    );
    let g = err.into_inner();
    assert_eq!(*g, 5);
}

#[test]
fn try_lock_reports_poison() {
    let m = Arc::new(Mutex::new(0));
    poison(&m);
    assert!(matches!(m.try_lock(), Err(TryLockError::Poisoned(_))));
}

#[test]
fn clear_poison_unpoisons() {
    let m = Arc::new(Mutex::new(0));
    poison(&m);
    m.clear_poison();
    assert!(!m.is_poisoned());
    assert_eq!(*m.lock().unwrap(), 5);
}

#[test]
fn panic_without_lock_does_not_poison() {
    let m = Arc::new(Mutex::new(0));
    let m2 = m.clone();
    let r = threadlet::run(move || {
        threadlet::spawn(move || {
            drop(m2.lock().unwrap());
            panic!("after unlock");
        })
        .join()
    });
    assert!(r.is_err());
    assert!(!m.is_poisoned());
}

#[test]
fn into_inner_and_get_mut_report_poison() {
    let mut m = Mutex::new(3);
    *m.get_mut().unwrap() += 1;
    assert_eq!(m.into_inner().unwrap(), 4);
    let m = Arc::new(Mutex::new(0));
    poison(&m);
    let mut m = Arc::try_unwrap(m).unwrap();
    assert_eq!(*m.get_mut().unwrap_err().into_inner(), 5);
    assert_eq!(m.into_inner().unwrap_err().into_inner(), 5);
}

#[test]
fn mutex_of_unsized_and_debug() {
    let m: &Mutex<[i32]> = &Mutex::new([1, 2, 3]);
    assert_eq!(m.lock().unwrap().len(), 3);
    let m = Mutex::new(9);
    assert_eq!(format!("{m:?}"), "Mutex { data: 9, poisoned: false, .. }");
    let g = m.lock().unwrap();
    assert_eq!(
        format!("{m:?}"),
        "Mutex { data: <locked>, poisoned: false, .. }"
    );
    assert_eq!(format!("{g:?} {g}"), "9 9");
}

#[test]
fn cancelled_waiter_leaves_mutex_usable() {
    let rt = rt();
    let m = Arc::new(Mutex::new(0));
    let g = m.lock().unwrap();
    let m2 = m.clone();
    let (started_tx, started_rx) = mpmc::bounded::<()>(0);
    let waiter = rt.spawn(move || {
        started_tx.send(()).unwrap();
        *m2.lock().unwrap() += 1;
    });
    started_rx.recv().unwrap();
    waiter.cancel();
    let err = waiter.join().unwrap_err();
    assert!(err.downcast_ref::<Cancelled>().is_some());
    drop(g);
    assert!(!m.is_poisoned());
    let m3 = m.clone();
    rt.block_on(move || *m3.lock().unwrap() += 10);
    assert_eq!(
        *m.lock().unwrap(),
        10,
        "the cancelled waiter never got the lock"
    );
}

// ---------------------------------------------------------------- RwLock

#[test]
fn readers_share_the_lock() {
    let lock = Arc::new(RwLock::new(1));
    let barrier = Arc::new(Barrier::new(3));
    let (l2, b2) = (lock.clone(), barrier.clone());
    rt().block_on(move || {
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let (l, b) = (l2.clone(), b2.clone());
                // All three hold a read guard at the barrier at once.
                threadlet::spawn(move || {
                    let g = l.read().unwrap();
                    b.wait();
                    *g
                })
            })
            .collect();
        assert_eq!(hs.into_iter().map(|h| h.join().unwrap()).sum::<i32>(), 3);
    });
    drop(barrier);
}

#[test]
fn writer_excludes_readers_and_writers() {
    let lock = RwLock::new(0);
    let w = lock.write().unwrap();
    assert!(matches!(lock.try_read(), Err(TryLockError::WouldBlock)));
    assert!(matches!(lock.try_write(), Err(TryLockError::WouldBlock)));
    drop(w);
    let r = lock.read().unwrap();
    assert!(matches!(lock.try_write(), Err(TryLockError::WouldBlock)));
    assert!(lock.try_read().is_ok());
    drop(r);
    *lock.write().unwrap() += 1;
    assert_eq!(lock.into_inner().unwrap(), 1);
}

#[test]
fn waiting_writer_blocks_new_readers() {
    let rt = rt();
    let lock = Arc::new(RwLock::new(0));
    let r = lock.read().unwrap();
    let l2 = lock.clone();
    let writer = rt.spawn(move || *l2.write().unwrap() = 1);
    // Once the writer is queued, a new reader may not overtake it.
    let start = Instant::now();
    while lock.try_read().is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "writer never queued"
        );
        thread::yield_now();
    }
    drop(r);
    writer.join().unwrap();
    assert_eq!(*lock.read().unwrap(), 1);
}

#[test]
fn rwlock_poisons_on_write_panic_only() {
    let lock = Arc::new(RwLock::new(0));
    let l2 = lock.clone();
    let r = threadlet::run(move || {
        threadlet::spawn(move || {
            let _g = l2.read().unwrap();
            panic!("reader panics");
        })
        .join()
    });
    assert!(r.is_err());
    assert!(!lock.is_poisoned());
    let l3 = lock.clone();
    let r = threadlet::run(move || {
        threadlet::spawn(move || {
            let _g = l3.write().unwrap();
            panic!("writer panics");
        })
        .join()
    });
    assert!(r.is_err());
    assert!(lock.is_poisoned());
    assert!(lock.read().is_err());
    assert!(matches!(lock.try_write(), Err(TryLockError::Poisoned(_))));
    lock.clear_poison();
    assert!(lock.write().is_ok());
}

// ---------------------------------------------------------------- Condvar

#[test]
fn condvar_wait_while_fiber_to_fiber() {
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let p2 = pair.clone();
    rt().block_on(move || {
        let p3 = p2.clone();
        threadlet::spawn(move || {
            *p3.0.lock().unwrap() = true;
            p3.1.notify_one();
        });
        let g =
            p2.1.wait_while(p2.0.lock().unwrap(), |ready| !*ready)
                .unwrap();
        assert!(*g);
    });
}

#[test]
fn condvar_thread_waits_fiber_notifies() {
    let rt = rt();
    let pair = Arc::new((Mutex::new(0), Condvar::new()));
    let p2 = pair.clone();
    let _f = rt.spawn(move || {
        for i in 1..=3 {
            *p2.0.lock().unwrap() = i;
            p2.1.notify_all();
        }
    });
    let g = pair
        .1
        .wait_while(pair.0.lock().unwrap(), |v| *v < 3)
        .unwrap();
    assert_eq!(*g, 3);
}

#[test]
fn condvar_wait_timeout_times_out() {
    let m = Mutex::new(0);
    let cv = Condvar::new();
    let start = Instant::now();
    let (g, res) = cv
        .wait_timeout(m.lock().unwrap(), Duration::from_millis(30))
        .unwrap();
    assert!(res.timed_out());
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert_eq!(*g, 0, "the guard is usable after a timeout");
}

#[test]
fn condvar_wait_timeout_on_fiber_times_out() {
    threadlet::run(|| {
        let m = Mutex::new(0);
        let cv = Condvar::new();
        let (_g, res) = cv
            .wait_timeout_while(m.lock().unwrap(), Duration::from_millis(20), |v| *v == 0)
            .unwrap();
        assert!(res.timed_out());
    });
}

#[test]
fn condvar_wait_timeout_while_returns_when_condition_met() {
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let p2 = pair.clone();
    let t = thread::spawn(move || {
        *p2.0.lock().unwrap() = true;
        p2.1.notify_one();
    });
    let (g, res) = pair
        .1
        .wait_timeout_while(pair.0.lock().unwrap(), Duration::from_secs(30), |v| !*v)
        .unwrap();
    assert!(!res.timed_out());
    assert!(*g);
    t.join().unwrap();
}

#[test]
fn condvar_notify_all_wakes_every_waiter() {
    let state = Arc::new((Mutex::new((0usize, false)), Condvar::new()));
    let s2 = state.clone();
    let woke = rt().block_on(move || {
        let hs: Vec<_> = (0..10)
            .map(|_| {
                let s = s2.clone();
                threadlet::spawn(move || {
                    let mut g = s.0.lock().unwrap();
                    g.0 += 1; // registered
                    s.1.notify_all(); // tell the main fiber
                    let _g = s.1.wait_while(g, |st| !st.1).unwrap();
                    1usize
                })
            })
            .collect();
        let g =
            s2.1.wait_while(s2.0.lock().unwrap(), |st| st.0 < 10)
                .unwrap();
        drop(g);
        s2.0.lock().unwrap().1 = true;
        s2.1.notify_all();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
    });
    assert_eq!(woke, 10);
}

#[test]
fn condvar_wait_reports_poison() {
    let pair = Arc::new((Mutex::new(0), Condvar::new()));
    let p2 = pair.clone();
    let waiter = thread::spawn(move || {
        let mut g = p2.0.lock().unwrap();
        *g = 1; // "I am about to wait", published under the lock
        p2.1.wait_while(g, |v| *v != 2).is_err()
    });
    let p3 = pair.clone();
    let r = threadlet::run(move || {
        threadlet::spawn(move || loop {
            let mut g = p3.0.lock().unwrap();
            if *g == 1 {
                // The thread released the lock in `wait`: it is waiting.
                *g = 2;
                p3.1.notify_all();
                panic!("poison while the thread waits");
            }
            drop(g);
            threadlet::yield_now();
        })
        .join()
    });
    assert!(r.is_err());
    assert!(
        waiter.join().unwrap(),
        "wait must return Err on a poisoned mutex"
    );
}

#[test]
fn cancelled_condvar_waiter_releases_mutex() {
    let rt = rt();
    let pair = Arc::new((Mutex::new(0), Condvar::new()));
    let p2 = pair.clone();
    let entered = Arc::new(AtomicUsize::new(0));
    let e2 = entered.clone();
    let waiter = rt.spawn(move || {
        let g = p2.0.lock().unwrap();
        e2.store(1, Ordering::SeqCst);
        let _g = p2.1.wait_while(g, |_| true).unwrap();
    });
    // The waiter holds the mutex until it waits; once we get it, it waits.
    loop {
        let g = pair.0.lock().unwrap();
        if entered.load(Ordering::SeqCst) == 1 {
            drop(g);
            break;
        }
        drop(g);
        thread::yield_now();
    }
    waiter.cancel();
    assert!(waiter
        .join()
        .unwrap_err()
        .downcast_ref::<Cancelled>()
        .is_some());
    assert!(!pair.0.is_poisoned());
    assert!(
        pair.0.try_lock().is_ok(),
        "the cancelled waiter must not hold the mutex"
    );
}

#[test]
fn panics_under_locks_never_take_down_a_worker() {
    let rt = rt();
    let m = Arc::new(Mutex::new(0u32));
    let l = Arc::new(RwLock::new(0u32));
    let panickers: Vec<_> = (0..20)
        .map(|i| {
            let (m, l) = (m.clone(), l.clone());
            rt.spawn(move || {
                if i % 2 == 0 {
                    let _g = m.lock().unwrap_or_else(|e| e.into_inner());
                    panic!("panic holding the mutex");
                } else {
                    let _g = l.write().unwrap_or_else(|e| e.into_inner());
                    panic!("panic holding the rwlock");
                }
            })
        })
        .collect();
    for h in panickers {
        assert!(h.join().is_err());
    }
    assert!(m.is_poisoned() && l.is_poisoned());
    let workers: Vec<_> = (0..50)
        .map(|_| {
            let (m, l) = (m.clone(), l.clone());
            rt.spawn(move || {
                *m.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                *l.write().unwrap_or_else(|e| e.into_inner()) += 1;
            })
        })
        .collect();
    workers.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(*m.lock().unwrap_or_else(|e| e.into_inner()), 50);
    assert_eq!(*l.read().unwrap_or_else(|e| e.into_inner()), 50);
    assert_eq!(rt.stats().workers, 2, "no worker died");
}
