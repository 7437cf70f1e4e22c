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
use waitq::{Wake, Waiter};

/// A loom thread as a waker.
#[derive(Debug, Clone)]
struct Loom(thread::Thread);

impl Wake for Loom {
    fn wake(&self) {
        self.0.unpark();
    }
}

fn me() -> Loom {
    Loom(thread::current())
}

/// A wait that only ends when the waiter is selected.
fn park_forever() -> impl FnMut() -> bool {
    || {
        thread::park();
        true
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
        let w = Arc::new(Waiter::new(me()));
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
        let w = Arc::new(Waiter::new(me()));
        let w2 = w.clone();
        let t = thread::spawn(move || {
            assert!(w2.try_select(3));
            w2.wake();
        });
        assert_eq!(waitq::wait(&w, park_forever()), Some(3));
        t.join().unwrap();
    });
}

// ------------------------------------------------------------------ mutex

fn mutex_threads(starving: bool) {
    bounded_model(move || {
        let m = Arc::new(RawMutex::<Loom>::new());
        let data = Arc::new(UnsafeCell::new(0usize));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (m, data) = (m.clone(), data.clone());
                thread::spawn(move || {
                    assert!(m.lock(me, park_forever(), move |_| starving));
                    data.with_mut(|d| unsafe { *d += 1 });
                    m.unlock();
                })
            })
            .collect();
        assert!(m.lock(me, park_forever(), move |_| starving));
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
        let m = Arc::new(RawMutex::<Loom>::new());
        assert!(m.lock(me, park_forever(), |_| false));
        let m2 = m.clone();
        let leaver = thread::spawn(move || {
            if m2.lock(me, give_up(), |_| true) {
                m2.unlock();
            }
        });
        let m3 = m.clone();
        let stayer = thread::spawn(move || {
            assert!(m3.lock(me, park_forever(), |_| false));
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
        let l = Arc::new(RawRwLock::<Loom>::new());
        let data = Arc::new(UnsafeCell::new(0usize));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (l, data) = (l.clone(), data.clone());
                thread::spawn(move || {
                    assert!(l.lock(Kind::Read, me, park_forever()));
                    let v = data.with(|d| unsafe { *d });
                    l.read_unlock();
                    assert!(v == 0 || v == 1);
                })
            })
            .collect();
        assert!(l.lock(Kind::Write, me, park_forever()));
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
        let l = Arc::new(RawRwLock::<Loom>::new());
        assert!(l.lock(Kind::Read, me, park_forever()));
        let l2 = l.clone();
        let writer = thread::spawn(move || {
            if l2.lock(Kind::Write, me, give_up()) {
                l2.write_unlock();
            }
        });
        let l3 = l.clone();
        let reader = thread::spawn(move || {
            assert!(l3.lock(Kind::Read, me, park_forever()));
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
        let c = Arc::new(Chan::<u32, Loom>::new(Some(0)));
        let c2 = c.clone();
        let t = thread::spawn(move || c2.send(5, me, park_forever()).is_ok());
        assert_eq!(c.recv(me, park_forever()), Ok(5));
        assert!(t.join().unwrap());
    });
}

/// A sender and a receiver that both may give up: the message is either
/// received (and the send succeeded) or given back to the sender — never
/// lost, never both.
#[test]
fn chan_aborts_never_lose_a_message() {
    bounded_model(|| {
        let c = Arc::new(Chan::<u32, Loom>::new(Some(0)));
        let c2 = c.clone();
        let t = thread::spawn(move || c2.send(5, me, give_up()));
        let got = c.recv(me, give_up());
        let sent = t.join().unwrap();
        match (got, sent) {
            (Ok(5), Ok(())) => {}
            (Err(chan::RecvError::Timeout), Err(chan::SendError::Timeout(5))) => {}
            other => panic!("message lost or duplicated: {other:?}"),
        }
    });
}

/// Buffered channel, two senders, one receiver that then drops: every
/// message is received, or buffered and dropped with the channel, or given
/// back to its sender.
#[test]
fn chan_disconnect_returns_blocked_message() {
    bounded_model(|| {
        let c = Arc::new(Chan::<u32, Loom>::new(Some(1)));
        c.add_sender();
        let senders: Vec<_> = (0..2u32)
            .map(|i| {
                let c = c.clone();
                thread::spawn(move || {
                    let r = c.send(i, me, park_forever());
                    c.drop_sender();
                    r
                })
            })
            .collect();
        let first = c.recv(me, park_forever()).unwrap();
        c.drop_receiver();
        let results: Vec<_> = senders.into_iter().map(|h| h.join().unwrap()).collect();
        // The received message's send succeeded; the other one was buffered
        // (and dropped with the buffer) or handed back to its sender.
        assert!(results[first as usize].is_ok());
        let other = &results[1 - first as usize];
        assert!(matches!(other, Ok(()) | Err(chan::SendError::Disconnected(v)) if *v != first));
    });
}

/// A select over two rendezvous channels and one sender on each that may
/// give up: the select gets exactly one message, its sender succeeded, and
/// the other sender got its message back.
#[test]
fn select_takes_exactly_one() {
    bounded_model(|| {
        let a = Arc::new(Chan::<u32, Loom>::new(Some(0)));
        let b = Arc::new(Chan::<u32, Loom>::new(Some(0)));
        let sent = Arc::new(AtomicUsize::new(0));
        let senders: Vec<_> = [(a.clone(), 1u32), (b.clone(), 2u32)]
            .into_iter()
            .map(|(c, v)| {
                let sent = sent.clone();
                thread::spawn(move || {
                    if c.send(v, me, give_up()).is_ok() {
                        sent.fetch_add(v as usize, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let mut ra = RecvOp::new(&*a);
        let mut rb = RecvOp::new(&*b);
        let mut ops: [&mut dyn SelectOp<Loom>; 2] = [&mut ra, &mut rb];
        let done = chan::select(&mut ops, 0, true, me, give_up());
        senders.into_iter().for_each(|h| h.join().unwrap());
        let got = match (done, ra.result.take(), rb.result.take()) {
            (Some(0), Some(chan::Outcome::Done(Some(v))), None) => v as usize,
            (Some(1), None, Some(chan::Outcome::Done(Some(v)))) => v as usize,
            (None, None, None) => 0,
            other => panic!("bad select outcome {other:?}"),
        };
        assert_eq!(got, sent.load(Ordering::SeqCst), "a message was lost or duplicated");
    });
}

/// A select with a send arm and a receiver that blocks: delivered once.
#[test]
fn select_send_meets_receiver() {
    bounded_model(|| {
        let a = Arc::new(Chan::<u32, Loom>::new(Some(0)));
        let a2 = a.clone();
        let receiver = thread::spawn(move || a2.recv(me, park_forever()));
        let mut sa = SendOp::new(&*a, 9);
        let mut ops: [&mut dyn SelectOp<Loom>; 1] = [&mut sa];
        assert_eq!(chan::select(&mut ops, 0, true, me, park_forever()), Some(0));
        assert_eq!(receiver.join().unwrap(), Ok(9));
    });
}
