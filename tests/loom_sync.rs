//! Loom model of the sync core: the exact code of `src/sync/waitq.rs` (the
//! waiter selection protocol and wait loop), `raw_mutex.rs`, `raw_rwlock.rs`
//! and `chan.rs` (channels and select), with loom threads as the waiters.
//! It checks mutual exclusion (loom's `UnsafeCell` flags racy access), that
//! no wake-up is lost (loom reports a deadlock if a waiter parks forever),
//! and that a message is never lost or duplicated when waits are aborted.
//! Run with:
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=/work/target-sync-loom cargo test --release --test loom_sync`
#![cfg(loom)]

#[allow(dead_code)]
#[path = "../src/sync/waitq.rs"]
mod waitq;

#[allow(dead_code)]
#[path = "../src/sync/raw_mutex.rs"]
mod raw_mutex;

#[allow(dead_code)]
#[path = "../src/sync/raw_rwlock.rs"]
mod raw_rwlock;

#[allow(dead_code)]
#[path = "../src/sync/chan.rs"]
mod chan;

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use chan::{Chan, RecvOp, SelectOp, SendOp};
use raw_mutex::RawMutex;
use raw_rwlock::{Kind, RawRwLock};
use waitq::{Waiter, Wake};

/// A loom thread's waker: a park token that only calls `unpark` when the
/// thread is really parked on it. (Loom's `unpark` would also wake a thread
/// blocked in a loom `Mutex` or `join`, which real threads never see, so a
/// stale wake must never reach loom's `unpark`.)
#[derive(Debug, Clone)]
struct Tok(Arc<TokInner>);

#[derive(Debug)]
struct TokInner {
    state: AtomicUsize,
    thread: thread::Thread,
}

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

impl Tok {
    /// The token of the calling loom thread.
    fn new() -> Tok {
        Tok(Arc::new(TokInner {
            state: AtomicUsize::new(EMPTY),
            thread: thread::current(),
        }))
    }

    /// `std::thread::park` semantics: consumes a pending wake or blocks.
    fn park(&self) {
        let st = &self.0.state;
        if st
            .compare_exchange(EMPTY, PARKED, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            st.store(EMPTY, Ordering::SeqCst); // NOTIFIED: consume it
            return;
        }
        loop {
            thread::park();
            if st
                .compare_exchange(NOTIFIED, EMPTY, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                return;
            }
        }
    }

    /// The waker factory for the core's calls.
    fn me(&self) -> impl FnMut() -> Tok + '_ {
        move || self.clone()
    }

    /// A wait that only ends when the waiter is selected.
    fn forever(&self) -> impl FnMut() -> bool + '_ {
        move || {
            self.park();
            true
        }
    }
}

impl Wake for Tok {
    fn wake(&self) {
        if self.0.state.swap(NOTIFIED, Ordering::SeqCst) == PARKED {
            self.0.thread.unpark();
        }
    }
}

/// A wait that gives up at its first park (a timeout or a cancellation
/// racing with the counterpart).
fn give_up() -> impl FnMut() -> bool {
    || {
        thread::yield_now();
        false
    }
}

fn bounded_model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}

// ------------------------------------------------------------------ waitq

/// A counterpart's select and the owner's abort race: exactly one wins, and
/// the loser sees the winner's outcome.
#[test]
fn waiter_select_xor_abort() {
    loom::model(|| {
        let w = Arc::new(Waiter::new(Tok::new()));
        let w2 = w.clone();
        let t = thread::spawn(move || w2.try_select(7));
        let aborted = w.try_abort();
        let selected = t.join().unwrap();
        assert!(aborted ^ selected);
        assert_eq!(w.selected(), if selected { Some(7) } else { None });
    });
}

/// The wait loop never misses a selection made before or during its park.
#[test]
fn wait_sees_selection() {
    loom::model(|| {
        let tok = Tok::new();
        let w = Arc::new(Waiter::new(tok.clone()));
        let w2 = w.clone();
        let t = thread::spawn(move || {
            assert!(w2.try_select(3));
            w2.wake();
        });
        assert_eq!(waitq::wait(&w, tok.forever()), Some(3));
        t.join().unwrap();
    });
}

// ------------------------------------------------------------------ mutex

fn mutex_threads(starving: bool) {
    bounded_model(move || {
        let m = Arc::new(RawMutex::<Tok>::new());
        let data = Arc::new(UnsafeCell::new(0usize));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (m, data) = (m.clone(), data.clone());
                thread::spawn(move || {
                    let t = Tok::new();
                    assert!(m.lock(t.me(), t.forever(), move |_| starving));
                    data.with_mut(|d| unsafe { *d += 1 });
                    m.unlock();
                })
            })
            .collect();
        let t = Tok::new();
        assert!(m.lock(t.me(), t.forever(), move |_| starving));
        data.with_mut(|d| unsafe { *d += 1 });
        m.unlock();
        handles.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(data.with(|d| unsafe { *d }), 3);
    });
}

/// Mutual exclusion and no lost wakeup with barging (waiters woken to retry).
#[test]
fn mutex_barging_excludes_and_wakes() {
    mutex_threads(false);
}

/// Same with direct handoff (starving waiters are handed the lock).
#[test]
fn mutex_handoff_excludes_and_wakes() {
    mutex_threads(true);
}

/// A waiter that gives up (cancellation) while the owner unlocks: either it
/// got the lock (and must release it) or it left; a third party still gets
/// the lock (no wake lost to the leaver).
#[test]
fn mutex_abort_passes_the_wake_on() {
    bounded_model(|| {
        let m = Arc::new(RawMutex::<Tok>::new());
        let t = Tok::new();
        assert!(m.lock(t.me(), t.forever(), |_| false));
        let m2 = m.clone();
        let leaver = thread::spawn(move || {
            let t = Tok::new();
            if m2.lock(t.me(), give_up(), |_| true) {
                m2.unlock();
            }
        });
        let m3 = m.clone();
        let stayer = thread::spawn(move || {
            let t = Tok::new();
            assert!(m3.lock(t.me(), t.forever(), |_| false));
            m3.unlock();
        });
        m.unlock();
        leaver.join().unwrap();
        stayer.join().unwrap();
        assert!(m.try_lock());
    });
}

// ------------------------------------------------------------------ rwlock

/// One writer and two readers: readers never see a half-done write, and
/// everyone gets the lock.
#[test]
fn rwlock_writer_and_readers() {
    bounded_model(|| {
        let l = Arc::new(RawRwLock::<Tok>::new());
        let data = Arc::new(UnsafeCell::new(0usize));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (l, data) = (l.clone(), data.clone());
                thread::spawn(move || {
                    let t = Tok::new();
                    assert!(l.lock(Kind::Read, t.me(), t.forever()));
                    let v = data.with(|d| unsafe { *d });
                    l.read_unlock();
                    assert!(v == 0 || v == 1);
                })
            })
            .collect();
        let t = Tok::new();
        assert!(l.lock(Kind::Write, t.me(), t.forever()));
        data.with_mut(|d| unsafe { *d = 1 });
        l.write_unlock();
        readers.into_iter().for_each(|h| h.join().unwrap());
        assert!(l.try_write());
    });
}

/// A queued writer that gives up must not strand the readers behind it.
#[test]
fn rwlock_aborting_writer_releases_queue() {
    bounded_model(|| {
        let l = Arc::new(RawRwLock::<Tok>::new());
        let t = Tok::new();
        assert!(l.lock(Kind::Read, t.me(), t.forever()));
        let l2 = l.clone();
        let writer = thread::spawn(move || {
            let t = Tok::new();
            if l2.lock(Kind::Write, t.me(), give_up()) {
                l2.write_unlock();
            }
        });
        let l3 = l.clone();
        let reader = thread::spawn(move || {
            let t = Tok::new();
            assert!(l3.lock(Kind::Read, t.me(), t.forever()));
            l3.read_unlock();
        });
        l.read_unlock();
        writer.join().unwrap();
        reader.join().unwrap();
        assert!(l.try_write());
    });
}

// ------------------------------------------------------------------ channels

/// Rendezvous: a blocking send meets a blocking receive.
#[test]
fn chan_rendezvous() {
    loom::model(|| {
        let c = Arc::new(Chan::<u32, Tok>::new(Some(0)));
        let c2 = c.clone();
        let h = thread::spawn(move || {
            let t = Tok::new();
            c2.send(5, t.me(), t.forever()).is_ok()
        });
        let t = Tok::new();
        assert_eq!(c.recv(t.me(), t.forever()), Ok(5));
        assert!(h.join().unwrap());
    });
}

/// A sender and a receiver that both may give up: the message is either
/// received (and the send succeeded) or given back to the sender — never
/// lost, never both.
#[test]
fn chan_aborts_never_lose_a_message() {
    bounded_model(|| {
        let c = Arc::new(Chan::<u32, Tok>::new(Some(0)));
        let c2 = c.clone();
        let h = thread::spawn(move || {
            let t = Tok::new();
            c2.send(5, t.me(), give_up())
        });
        let t = Tok::new();
        let got = c.recv(t.me(), give_up());
        let sent = h.join().unwrap();
        match (got, sent) {
            (Ok(5), Ok(())) => {}
            (Err(chan::RecvError::Timeout), Err(chan::SendError::Timeout(5))) => {}
            other => panic!("message lost or duplicated: {other:?}"),
        }
    });
}

/// Buffered channel, two senders, one receiver that then drops: the
/// received message's send succeeded; the other message was buffered (and
/// dropped with the buffer) or handed back to its sender.
#[test]
fn chan_disconnect_returns_blocked_message() {
    bounded_model(|| {
        let c = Arc::new(Chan::<u32, Tok>::new(Some(1)));
        c.add_sender();
        let senders: Vec<_> = (0..2u32)
            .map(|i| {
                let c = c.clone();
                thread::spawn(move || {
                    let t = Tok::new();
                    let r = c.send(i, t.me(), t.forever());
                    c.drop_sender();
                    r
                })
            })
            .collect();
        let t = Tok::new();
        let first = c.recv(t.me(), t.forever()).unwrap();
        c.drop_receiver();
        let results: Vec<_> = senders.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(results[first as usize].is_ok());
        match &results[1 - first as usize] {
            Ok(()) => {}
            Err(chan::SendError::Disconnected(v)) => assert_ne!(*v, first),
            Err(e) => panic!("unexpected {e:?}"),
        }
    });
}

/// A select over two rendezvous channels and one sender on each that may
/// give up: the select gets at most one message, its sender (and only its
/// sender) succeeded.
#[test]
fn select_takes_exactly_one() {
    bounded_model(|| {
        let a = Arc::new(Chan::<u32, Tok>::new(Some(0)));
        let b = Arc::new(Chan::<u32, Tok>::new(Some(0)));
        let sent = Arc::new(AtomicUsize::new(0));
        let senders: Vec<_> = [(a.clone(), 1u32), (b.clone(), 2u32)]
            .into_iter()
            .map(|(c, v)| {
                let sent = sent.clone();
                thread::spawn(move || {
                    let t = Tok::new();
                    if c.send(v, t.me(), give_up()).is_ok() {
                        sent.fetch_add(v as usize, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let mut ra = RecvOp::new(&*a);
        let mut rb = RecvOp::new(&*b);
        let mut ops: [&mut dyn SelectOp<Tok>; 2] = [&mut ra, &mut rb];
        let t = Tok::new();
        let done = chan::select(&mut ops, 0, true, t.me(), give_up());
        senders.into_iter().for_each(|h| h.join().unwrap());
        let got = match (done, ra.result.take(), rb.result.take()) {
            (Some(0), Some(chan::Outcome::Done(Some(v))), None) => v as usize,
            (Some(1), None, Some(chan::Outcome::Done(Some(v)))) => v as usize,
            (None, None, None) => 0,
            other => panic!("bad select outcome {other:?}"),
        };
        assert_eq!(
            got,
            sent.load(Ordering::SeqCst),
            "a message was lost or duplicated"
        );
    });
}

/// A select with a send arm and a receiver that blocks: delivered once.
#[test]
fn select_send_meets_receiver() {
    bounded_model(|| {
        let a = Arc::new(Chan::<u32, Tok>::new(Some(0)));
        let a2 = a.clone();
        let receiver = thread::spawn(move || {
            let t = Tok::new();
            a2.recv(t.me(), t.forever())
        });
        let mut sa = SendOp::new(&*a, 9);
        let mut ops: [&mut dyn SelectOp<Tok>; 1] = [&mut sa];
        let t = Tok::new();
        assert_eq!(
            chan::select(&mut ops, 0, true, t.me(), t.forever()),
            Some(0)
        );
        assert_eq!(receiver.join().unwrap(), Ok(9));
    });
}
