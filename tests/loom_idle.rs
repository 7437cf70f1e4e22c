//! Loom model of the worker sleep handshake (RELIABILITY row 1: work queued
//! while a worker goes to sleep is never left unrun): the exact code of
//! `src/scheduler/idle.rs`. Run with:
//! `RUSTFLAGS="--cfg loom" cargo test --release --test loom_idle`
#![cfg(loom)]

#[allow(dead_code)]
#[path = "../src/scheduler/idle.rs"]
mod idle;

use idle::SleepState;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// A producer pushes one item and notifies; the worker goes to sleep and
/// re-checks the queue. Either the worker sees the item in its re-check, or
/// the producer sees it asleep and claims (wakes) it. "Sleeps with the item
/// queued and nobody waking it" must be impossible.
fn push_vs_sleep(as_searcher: bool) {
    loom::model(move || {
        let sleep = Arc::new(SleepState::default());
        let queue = Arc::new(AtomicUsize::new(0));
        let claimed = Arc::new(AtomicUsize::new(0));
        let producer = {
            let (sleep, queue, claimed) = (sleep.clone(), queue.clone(), claimed.clone());
            thread::spawn(move || {
                queue.store(1, Ordering::Relaxed);
                idle::producer_fence();
                if sleep.claim(as_searcher).is_some() {
                    claimed.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        sleep.prepare(false);
        let saw_work = queue.load(Ordering::Relaxed) == 1;
        producer.join().unwrap();
        if !saw_work {
            assert!(
                !sleep.is_asleep(),
                "worker sleeps, work queued, nobody woke it"
            );
            assert_eq!(claimed.load(Ordering::SeqCst), 1);
        }
        let searcher = sleep.wake_up();
        if searcher {
            assert!(as_searcher);
        }
    });
}

#[test]
fn push_vs_sleep_plain() {
    push_vs_sleep(false);
}

#[test]
fn push_vs_sleep_searcher() {
    push_vs_sleep(true);
}

/// Two producers race to wake one sleeper: exactly one claims it.
#[test]
fn one_claim_per_sleep() {
    loom::model(|| {
        let sleep = Arc::new(SleepState::default());
        let claims = Arc::new(AtomicUsize::new(0));
        sleep.prepare(true);
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let (sleep, claims) = (sleep.clone(), claims.clone());
                thread::spawn(move || {
                    if sleep.claim(false).is_some() {
                        claims.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(claims.load(Ordering::SeqCst), 1);
    });
}
