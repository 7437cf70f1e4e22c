//! Loom model of the park protocol (RELIABILITY rows 1 and 2): the exact code
//! of `src/park/state.rs`, with the fiber/worker on one thread and wakers on
//! others. Run with:
//! `RUSTFLAGS="--cfg loom" cargo test --release --test loom_park`
#![cfg(loom)]

#[allow(dead_code)]
#[path = "../src/park/state.rs"]
mod state;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use state::{ParkState, Wake};

/// The fiber tries to park once; each waker unparks once. Whatever the
/// interleaving: if the fiber suspended, it is resumed exactly once (by the
/// worker's failed commit or by the one waker that won the CAS), and never
/// before the commit (a schedule can only follow PARKED, which only the
/// commit writes).
fn park_vs_wakers(wakers: usize) {
    loom::model(move || {
        let st = Arc::new(ParkState::new());
        let resumes = Arc::new(AtomicUsize::new(0));
        let committed = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..wakers)
            .map(|_| {
                let (st, resumes, committed) = (st.clone(), resumes.clone(), committed.clone());
                thread::spawn(move || {
                    if st.unpark() == Wake::Schedule {
                        // Scheduling is only legal after the worker committed.
                        assert_eq!(
                            committed.load(Ordering::SeqCst),
                            1,
                            "scheduled before commit"
                        );
                        resumes.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        // Fiber side then worker side (same thread, as on a real worker).
        let suspended = !st.take_token();
        if suspended {
            committed.store(1, Ordering::SeqCst);
            if !st.commit() {
                // A wake arrived between the decision and the commit.
                committed.store(2, Ordering::SeqCst);
                resumes.fetch_add(1, Ordering::SeqCst);
            }
        }
        for h in handles {
            h.join().unwrap();
        }
        let resumed = resumes.load(Ordering::SeqCst);
        if suspended {
            assert_eq!(
                resumed, 1,
                "one park, {wakers} wakes: resumed {resumed} times"
            );
        } else {
            assert_eq!(resumed, 0, "a consumed token must not also schedule");
        }
    });
}

#[test]
fn one_waker() {
    park_vs_wakers(1);
}

#[test]
fn two_wakers() {
    park_vs_wakers(2);
}

/// A token left by a wake that came before the park makes the next park
/// return at once (no lost wakeup), and is used up by it.
#[test]
fn token_before_park() {
    loom::model(|| {
        let st = Arc::new(ParkState::new());
        let st2 = st.clone();
        let t = thread::spawn(move || st2.unpark());
        let wake = t.join().unwrap();
        assert_eq!(wake, Wake::Token);
        assert!(st.take_token(), "the token must be there");
        assert!(!st.take_token(), "the token is used once");
    });
}

/// In-place parking (a fiber unwinding a panic): the waker's unpark either
/// finds PARKED_IN_PLACE (and must wake the thread) or leaves a token that
/// stops the park; the fiber never waits forever.
#[test]
fn in_place_park_is_woken() {
    loom::model(|| {
        let st = Arc::new(ParkState::new());
        let thread_wakes = Arc::new(AtomicUsize::new(0));
        let (st2, tw) = (st.clone(), thread_wakes.clone());
        let t = thread::spawn(move || {
            if st2.unpark() == Wake::Thread {
                tw.fetch_add(1, Ordering::SeqCst);
            }
        });
        let waits = st.park_in_place();
        t.join().unwrap();
        if waits {
            // The fiber blocks until the state leaves PARKED_IN_PLACE; the
            // waker must have moved it and asked for a thread wake.
            assert!(!st.is_parked_in_place());
            assert_eq!(thread_wakes.load(Ordering::SeqCst), 1);
        }
    });
}
