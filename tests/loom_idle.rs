//! Loom models of the spinning protocol (RELIABILITY row 1: work queued while
//! a worker goes to sleep is never left unrun): the exact code of
//! `src/scheduler/idle.rs` — the sleep handshake of a worker blocking in its
//! own poller, the wake by another thread, and the searcher count. Run with:
//! `RUSTFLAGS="--cfg loom" cargo test --release --test loom_idle`
#![cfg(loom)]

#[allow(dead_code)]
#[path = "../src/scheduler/idle.rs"]
mod idle;

use std::cell::Cell;

use idle::{Idle, Woken};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// A producer pushes a fiber into worker 0's inbox and notifies it; the
/// worker publishes SLEEPING and re-checks its inbox. Either the worker sees
/// the fiber in its re-check, or the producer sees it asleep and wakes it
/// (once). "Blocks in epoll_wait with the fiber queued and nobody waking
/// it" must be impossible, and the worker learns who woke it.
#[test]
fn inbox_push_vs_sleep() {
    loom::model(|| {
        let idle = Arc::new(Idle::new(1));
        let inbox = Arc::new(AtomicUsize::new(0));
        let wakes = Arc::new(AtomicUsize::new(0));
        let producer = {
            let (idle, inbox, wakes) = (idle.clone(), inbox.clone(), wakes.clone());
            thread::spawn(move || {
                inbox.store(1, Ordering::Relaxed);
                idle.notify_worker(0, |_| {
                    wakes.fetch_add(1, Ordering::SeqCst);
                });
            })
        };
        let me = Cell::new(false);
        idle.prepare_sleep(0);
        let saw_work = inbox.load(Ordering::Relaxed) == 1;
        producer.join().unwrap();
        let woken_by_other = wakes.load(Ordering::SeqCst) == 1;
        if !saw_work {
            assert!(
                woken_by_other,
                "worker sleeps, fiber queued, nobody woke it"
            );
            assert!(!idle.is_asleep(0));
        }
        assert!(wakes.load(Ordering::SeqCst) <= 1);
        let woken = idle.woke(0, &me);
        assert_eq!(woken == Woken::ByOther, woken_by_other);
        assert!(!me.get(), "an inbox wake does not make a searcher");
        assert_eq!(idle.searching(), 0);
    });
}

/// Two producers race to wake one sleeper: exactly one wake syscall.
#[test]
fn one_wake_per_sleep() {
    loom::model(|| {
        let idle = Arc::new(Idle::new(1));
        let wakes = Arc::new(AtomicUsize::new(0));
        idle.prepare_sleep(0);
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let (idle, wakes) = (idle.clone(), wakes.clone());
                thread::spawn(move || {
                    idle.notify_worker(0, |_| {
                        wakes.fetch_add(1, Ordering::SeqCst);
                    });
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
    });
}

/// Takes the one queued item, if any. (A compare-exchange, not a swap: loom
/// can lose a plain store that races with a swap, tokio-rs/loom#254; the
/// push is an RMW too for the same reason.)
fn take(queue: &AtomicUsize) -> bool {
    queue
        .compare_exchange(1, 0, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
}

/// The searcher rule's hard case: worker 0 is the only searcher when a
/// producer pushes stealable work. The producer sees "someone searches" and
/// wakes nobody, or sees no searcher and claims a sleeper; the searcher
/// finds the work in a search round, in its re-check after giving up, or is
/// woken as a searcher and finds it then. The work is never stranded, and
/// the searcher count ends at exactly zero (never leaks, never underflows).
#[test]
fn last_searcher_gives_up_vs_spawn() {
    loom::model(|| {
        let idle = Arc::new(Idle::new(1));
        let fresh = Arc::new(AtomicUsize::new(0));
        let me = Cell::new(false);
        idle.start_search(&me);
        let producer = {
            let (idle, fresh) = (idle.clone(), fresh.clone());
            thread::spawn(move || {
                fresh.fetch_add(1, Ordering::SeqCst);
                idle.notify_any(|_| {});
            })
        };
        // One search round, then give up and sleep.
        let mut taken = take(&fresh);
        if taken {
            idle.found_work(&me, |_| {});
        } else {
            idle.give_up(&me);
            idle.prepare_sleep(0);
            taken = take(&fresh);
            if taken {
                idle.woke(0, &me);
                idle.found_work(&me, |_| {});
            }
        }
        producer.join().unwrap();
        if !taken {
            assert!(
                !idle.is_asleep(0),
                "stealable work left with its searcher asleep"
            );
            assert_eq!(idle.woke(0, &me), Woken::ToSearch);
            assert!(me.get());
            assert!(take(&fresh), "woken to search, but the work is gone");
            idle.found_work(&me, |_| {});
        }
        // A claim that came after the worker was already awake again is
        // possible only as a claim of a sleeper: settle any such state.
        if idle.is_asleep(0) {
            idle.woke(0, &me);
        }
        idle.give_up(&me);
        assert_eq!(idle.searching(), 0);
    });
}

/// Two producers push stealable work while two workers sleep: each claim
/// as a searcher adds exactly one count, a second producer that sees a
/// searcher wakes nobody, at least one worker is woken, and once the woken
/// workers stop searching the count is zero again.
#[test]
fn searcher_count_matches_claims() {
    loom::model(|| {
        let idle = Arc::new(Idle::new(2));
        let wakes = Arc::new(AtomicUsize::new(0));
        idle.prepare_sleep(0);
        idle.prepare_sleep(1);
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let (idle, wakes) = (idle.clone(), wakes.clone());
                thread::spawn(move || {
                    idle.notify_any(|_| {
                        wakes.fetch_add(1, Ordering::SeqCst);
                    });
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let woken = wakes.load(Ordering::SeqCst);
        assert!(
            woken >= 1,
            "stealable work pushed, two sleepers, nobody woken"
        );
        assert_eq!(idle.searching(), woken, "one count per searcher claimed");
        let flags = [Cell::new(false), Cell::new(false)];
        for (i, me) in flags.iter().enumerate() {
            if !idle.is_asleep(i) {
                assert_eq!(idle.woke(i, me), Woken::ToSearch);
            }
        }
        for me in &flags {
            idle.give_up(me);
        }
        assert_eq!(idle.searching(), 0);
    });
}

/// A searcher that finds work while it is the last one searching wakes a
/// sleeping sibling to search on, concurrently with a producer's
/// `notify_any`: the sibling is woken once, and counted once.
#[test]
fn last_searcher_found_work_hands_on() {
    loom::model(|| {
        let idle = Arc::new(Idle::new(2));
        let wakes = Arc::new(AtomicUsize::new(0));
        idle.prepare_sleep(1);
        let me0 = Cell::new(false);
        idle.start_search(&me0);
        let producer = {
            let (idle, wakes) = (idle.clone(), wakes.clone());
            thread::spawn(move || {
                idle.notify_any(|_| {
                    wakes.fetch_add(1, Ordering::SeqCst);
                });
            })
        };
        idle.found_work(&me0, |_| {
            wakes.fetch_add(1, Ordering::SeqCst);
        });
        producer.join().unwrap();
        assert_eq!(
            wakes.load(Ordering::SeqCst),
            1,
            "the sleeping sibling is woken exactly once"
        );
        assert_eq!(idle.searching(), 1);
        let me1 = Cell::new(false);
        assert_eq!(idle.woke(1, &me1), Woken::ToSearch);
        idle.give_up(&me1);
        assert_eq!(idle.searching(), 0);
    });
}
