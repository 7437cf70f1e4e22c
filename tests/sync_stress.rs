//! Stress: fibers on every worker (`workers(2)`) mixed with plain threads,
//! hammering each primitive. Exact counts: nothing lost, nothing duplicated,
//! no exclusion broken, nobody left waiting.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use threadlet::sync::{mpmc, mpsc, Barrier, Condvar, Mutex, RwLock, Semaphore};
use threadlet::Runtime;

fn rt() -> Runtime {
    Runtime::builder().workers(2).build().unwrap()
}

/// Runs `body(i)` on `fibers` fibers and `threads` threads; joins them all.
fn mixed<F>(rt: &Runtime, fibers: usize, threads: usize, body: F)
where
    F: Fn(usize) + Send + Sync + 'static,
{
    let body = Arc::new(body);
    let fs: Vec<_> = (0..fibers)
        .map(|i| {
            let b = body.clone();
            rt.spawn(move || b(i))
        })
        .collect();
    let ts: Vec<_> = (0..threads)
        .map(|i| {
            let b = body.clone();
            thread::spawn(move || b(fibers + i))
        })
        .collect();
    fs.into_iter().for_each(|h| h.join().unwrap());
    ts.into_iter().for_each(|h| h.join().unwrap());
}

#[test]
fn mutex_counter_fibers_and_threads() {
    let rt = rt();
    let m = Arc::new(Mutex::new((0u64, 0u64)));
    let per = 3_000;
    let m2 = m.clone();
    mixed(&rt, 8, 2, move |_| {
        for i in 0..per {
            let mut g = m2.lock().unwrap();
            let a = g.0;
            if i % 64 == 0 {
                threadlet::yield_now(); // hold it across a switch now and then
            }
            g.0 = a + 1;
            g.1 += 1;
        }
    });
    assert_eq!(*m.lock().unwrap(), (10 * per, 10 * per));
}

#[test]
fn rwlock_invariant_under_mixed_load() {
    let rt = rt();
    let l = Arc::new(RwLock::new((0u64, 0u64)));
    let l2 = l.clone();
    mixed(&rt, 6, 2, move |i| {
        for k in 0..1_500 {
            if (i + k) % 4 == 0 {
                let mut g = l2.write().unwrap();
                g.0 += 1;
                threadlet::yield_now();
                g.1 += 1;
            } else {
                let g = l2.read().unwrap();
                assert_eq!(g.0, g.1, "a reader saw a half-done write");
            }
        }
    });
    let g = l.read().unwrap();
    assert_eq!(g.0, g.1);
    assert_eq!(
        g.0,
        (0..8)
            .map(|i| (0..1_500).filter(|k| (i + k) % 4 == 0).count() as u64)
            .sum()
    );
}

fn channel_mpmc(cap: Option<usize>) {
    let rt = rt();
    let (s, r) = match cap {
        Some(c) => mpmc::bounded::<u64>(c),
        None => mpmc::unbounded(),
    };
    let per = 2_000u64;
    let producers = 6;
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let consumed = Arc::new(AtomicUsize::new(0));
    // Consumers: 3 fibers + 1 thread.
    let consumers: Vec<_> = (0..4)
        .map(|c| {
            let (r, seen, consumed) = (r.clone(), seen.clone(), consumed.clone());
            let body = move || {
                let mut local = Vec::new();
                for v in r.iter() {
                    local.push(v);
                }
                consumed.fetch_add(local.len(), Ordering::SeqCst);
                let mut seen = seen.lock().unwrap();
                for v in local {
                    assert!(seen.insert(v), "duplicate message {v}");
                }
            };
            if c == 3 {
                Err(thread::spawn(body))
            } else {
                Ok(rt.spawn(body))
            }
        })
        .collect();
    drop(r);
    mixed(&rt, producers - 2, 2, move |p| {
        for k in 0..per {
            s.send(p as u64 * per + k).unwrap();
        }
    });
    for c in consumers {
        match c {
            Ok(h) => h.join().unwrap(),
            Err(h) => h.join().unwrap(),
        }
    }
    assert_eq!(consumed.load(Ordering::SeqCst), producers * per as usize);
    assert_eq!(seen.lock().unwrap().len(), producers * per as usize);
}

#[test]
fn mpmc_unbounded_exact() {
    channel_mpmc(None);
}

#[test]
fn mpmc_bounded_exact() {
    channel_mpmc(Some(8));
}

#[test]
fn mpmc_rendezvous_exact() {
    channel_mpmc(Some(0));
}

#[test]
fn mpsc_many_producers_one_consumer_in_order_per_producer() {
    let rt = rt();
    let (tx, rx) = mpsc::sync_channel::<(usize, u32)>(4);
    let per = 3_000u32;
    let tx2 = tx.clone();
    let consumer = rt.spawn(move || {
        let mut next = [0u32; 8];
        let mut n = 0;
        for (p, v) in rx {
            assert_eq!(v, next[p], "producer {p} out of order");
            next[p] += 1;
            n += 1;
        }
        n
    });
    drop(tx);
    mixed(&rt, 6, 2, move |p| {
        let tx = tx2.clone();
        for v in 0..per {
            tx.send((p, v)).unwrap();
        }
    });
    assert_eq!(consumer.join().unwrap(), 8 * per);
}

#[test]
fn select_consumers_over_two_channels_exact() {
    let rt = rt();
    let (s1, r1) = mpmc::bounded::<u64>(0);
    let (s2, r2) = mpmc::bounded::<u64>(2);
    let per = 2_000u64;
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let (r1, r2) = (r1.clone(), r2.clone());
            rt.spawn(move || {
                let mut got = Vec::new();
                let (mut open1, mut open2) = (true, true);
                while open1 || open2 {
                    threadlet::select! {
                        recv(r1) -> v => match v { Ok(v) => got.push(v), Err(_) => open1 = false },
                        recv(r2) -> v => match v { Ok(v) => got.push(v), Err(_) => open2 = false },
                    }
                }
                got
            })
        })
        .collect();
    let t_consumer = {
        let (r1, r2) = (r1.clone(), r2.clone());
        thread::spawn(move || {
            let mut got = Vec::new();
            let (mut open1, mut open2) = (true, true);
            while open1 || open2 {
                threadlet::select! {
                    recv(r1) -> v => match v { Ok(v) => got.push(v), Err(_) => open1 = false },
                    recv(r2) -> v => match v { Ok(v) => got.push(v), Err(_) => open2 = false },
                }
            }
            got
        })
    };
    drop((r1, r2));
    // Producers alternate channels through a select with two send arms.
    mixed(&rt, 3, 1, move |p| {
        for k in 0..per {
            let v = p as u64 * per + k;
            threadlet::select! {
                send(s1, v) -> res => res.unwrap(),
                send(s2, v) -> res => res.unwrap(),
            }
        }
    });
    let mut all = HashSet::new();
    for c in consumers {
        for v in c.join().unwrap() {
            assert!(all.insert(v), "duplicate {v}");
        }
    }
    for v in t_consumer.join().unwrap() {
        assert!(all.insert(v), "duplicate {v}");
    }
    assert_eq!(all.len(), 4 * per as usize);
}

#[test]
fn condvar_ping_pong_fiber_and_thread() {
    let rt = rt();
    let rounds = 2_000u32;
    let state = Arc::new((Mutex::new(0u32), Condvar::new()));
    let s2 = state.clone();
    let fiber = rt.spawn(move || {
        for i in 0..rounds {
            let g =
                s2.1.wait_while(s2.0.lock().unwrap(), |v| *v != 2 * i)
                    .unwrap();
            let mut g = g;
            *g += 1;
            s2.1.notify_all();
        }
    });
    for i in 0..rounds {
        let mut g = state
            .1
            .wait_while(state.0.lock().unwrap(), |v| *v != 2 * i + 1)
            .unwrap();
        *g += 1;
        state.1.notify_all();
    }
    fiber.join().unwrap();
    assert_eq!(*state.0.lock().unwrap(), 2 * rounds);
}

#[test]
fn semaphore_never_over_admits() {
    let rt = rt();
    let sem = Arc::new(Semaphore::new(2));
    let inside = Arc::new(AtomicUsize::new(0));
    let entries = Arc::new(AtomicUsize::new(0));
    let (s2, i2, e2) = (sem.clone(), inside.clone(), entries.clone());
    mixed(&rt, 8, 2, move |_| {
        for _ in 0..1_000 {
            let _p = s2.acquire();
            assert!(i2.fetch_add(1, Ordering::SeqCst) < 2, "more than 2 inside");
            e2.fetch_add(1, Ordering::SeqCst);
            threadlet::yield_now();
            i2.fetch_sub(1, Ordering::SeqCst);
        }
    });
    assert_eq!(entries.load(Ordering::SeqCst), 10_000);
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn barrier_rounds_fibers_and_threads() {
    let rt = rt();
    let parties = 6;
    let barrier = Arc::new(Barrier::new(parties));
    let leaders = Arc::new(AtomicUsize::new(0));
    let (b2, l2) = (barrier.clone(), leaders.clone());
    mixed(&rt, 4, 2, move |_| {
        for _ in 0..500 {
            if b2.wait().is_leader() {
                l2.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    assert_eq!(leaders.load(Ordering::SeqCst), 500);
}

#[test]
fn ping_pong_thread_fiber_rendezvous() {
    let rt = rt();
    let (to_f, from_t) = mpmc::bounded::<u32>(0);
    let (to_t, from_f) = mpmc::bounded::<u32>(0);
    let echo = rt.spawn(move || {
        for v in from_t.iter() {
            to_t.send(v * 2).unwrap();
        }
    });
    for i in 0..5_000 {
        to_f.send(i).unwrap();
        assert_eq!(from_f.recv(), Ok(i * 2));
    }
    drop(to_f);
    echo.join().unwrap();
}
