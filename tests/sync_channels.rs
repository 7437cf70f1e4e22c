//! Semantics of `mpsc` (std's, with std's error types), `mpmc`
//! (crossbeam-channel's) and `oneshot`, between fibers and threads.

use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::{Duration, Instant};

use threadlet::fiber::Cancelled;
use threadlet::sync::{mpmc, mpsc, oneshot};
use threadlet::Runtime;

fn rt() -> Runtime {
    Runtime::builder().workers(2).build().unwrap()
}

// ---------------------------------------------------------------- mpsc

#[test]
fn mpsc_preserves_order() {
    let (tx, rx) = mpsc::channel();
    let got = threadlet::run(move || {
        threadlet::spawn(move || (0..100).for_each(|i| tx.send(i).unwrap()));
        rx.iter().collect::<Vec<_>>()
    });
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

#[test]
fn mpsc_send_after_receiver_dropped_returns_value() {
    let (tx, rx) = mpsc::channel::<String>();
    drop(rx);
    let err = tx.send("lost".to_string()).unwrap_err();
    assert_eq!(err, std_mpsc::SendError("lost".to_string()));
    assert_eq!(err.0, "lost");
}

#[test]
fn mpsc_buffered_messages_survive_disconnection() {
    let (tx, rx) = mpsc::channel();
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    drop(tx);
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.recv(), Err(std_mpsc::RecvError));
    assert_eq!(rx.try_recv(), Err(std_mpsc::TryRecvError::Disconnected));
}

#[test]
fn mpsc_iter_ends_when_all_senders_drop() {
    let rt = rt();
    let (tx, rx) = mpsc::channel();
    for f in 0..4 {
        let tx = tx.clone();
        rt.spawn(move || (0..25).for_each(|i| tx.send(f * 100 + i).unwrap()));
    }
    drop(tx);
    let mut got: Vec<_> = rx.iter().collect();
    got.sort();
    assert_eq!(got.len(), 100);
    got.dedup();
    assert_eq!(got.len(), 100);
}

#[test]
fn mpsc_try_iter_and_into_iter() {
    let (tx, rx) = mpsc::channel();
    assert_eq!(rx.try_iter().count(), 0);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![1, 2]);
    tx.send(3).unwrap();
    drop(tx);
    assert_eq!((&rx).into_iter().collect::<Vec<_>>(), vec![3]);
    let (tx, rx) = mpsc::channel();
    tx.send(4).unwrap();
    drop(tx);
    assert_eq!(rx.into_iter().collect::<Vec<_>>(), vec![4]);
}

#[test]
fn mpsc_recv_timeout_times_out_then_disconnects() {
    let (tx, rx) = mpsc::channel::<i32>();
    let start = Instant::now();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(20)),
        Err(std_mpsc::RecvTimeoutError::Timeout)
    );
    assert!(start.elapsed() >= Duration::from_millis(20));
    drop(tx);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)),
        Err(std_mpsc::RecvTimeoutError::Disconnected)
    );
}

#[test]
fn mpsc_recv_timeout_on_fiber_gets_late_message() {
    let (tx, rx) = mpsc::channel();
    let got = threadlet::run(move || {
        threadlet::spawn(move || {
            threadlet::yield_now();
            tx.send(5).unwrap();
        });
        rx.recv_timeout(Duration::from_secs(30))
    });
    assert_eq!(got, Ok(5));
}

#[test]
fn mpsc_sync_channel_zero_is_rendezvous() {
    let (tx, rx) = mpsc::sync_channel(0);
    assert_eq!(
        tx.try_send(1),
        Err(std_mpsc::TrySendError::Full(1)),
        "nobody is receiving"
    );
    let rt = rt();
    let f = rt.spawn(move || rx.recv().unwrap());
    tx.send(2).unwrap(); // returns once the fiber took it
    assert_eq!(f.join().unwrap(), 2);
    assert_eq!(tx.try_send(3), Err(std_mpsc::TrySendError::Disconnected(3)));
}

#[test]
fn mpsc_sync_channel_bound_fills() {
    let (tx, rx) = mpsc::sync_channel(2);
    tx.try_send(1).unwrap();
    tx.send(2).unwrap();
    assert_eq!(tx.try_send(3), Err(std_mpsc::TrySendError::Full(3)));
    assert_eq!(rx.recv(), Ok(1));
    tx.try_send(3).unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![2, 3]);
}

#[test]
fn mpsc_thread_to_fiber_and_back() {
    let rt = rt();
    let (to_fiber, from_thread) = mpsc::channel::<u32>();
    let (to_thread, from_fiber) = mpsc::sync_channel::<u32>(0);
    let echo = rt.spawn(move || {
        for v in from_thread {
            to_thread.send(v + 1).unwrap();
        }
    });
    for i in 0..200 {
        to_fiber.send(i).unwrap();
        assert_eq!(from_fiber.recv(), Ok(i + 1));
    }
    drop(to_fiber);
    echo.join().unwrap();
    assert_eq!(from_fiber.recv(), Err(std_mpsc::RecvError));
}

#[test]
fn mpsc_blocked_sync_sender_gets_value_back_on_disconnect() {
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(0);
    let (ready_tx, ready_rx) = mpmc::bounded::<()>(0);
    let rt = rt();
    let sender = rt.spawn(move || {
        ready_tx.send(()).unwrap();
        tx.send(vec![1, 2, 3])
    });
    ready_rx.recv().unwrap();
    drop(rx);
    assert_eq!(
        sender.join().unwrap(),
        Err(std_mpsc::SendError(vec![1, 2, 3]))
    );
}

// ---------------------------------------------------------------- mpmc

#[test]
fn mpmc_capacity_len_full() {
    let (s, r) = mpmc::bounded(2);
    assert_eq!(s.capacity(), Some(2));
    assert!(s.is_empty());
    s.send(1).unwrap();
    s.send(2).unwrap();
    assert!(s.is_full() && r.is_full());
    assert_eq!(r.len(), 2);
    assert_eq!(s.try_send(3), Err(mpmc::TrySendError::Full(3)));
    assert_eq!(mpmc::unbounded::<()>().0.capacity(), None);
    assert!(
        mpmc::bounded::<()>(0).0.is_full(),
        "zero capacity is always full"
    );
}

#[test]
fn mpmc_disconnects_only_when_all_of_one_side_drop() {
    let (s, r) = mpmc::unbounded();
    let s2 = s.clone();
    let r2 = r.clone();
    drop(s);
    s2.send(1).unwrap();
    drop(r);
    assert_eq!(r2.recv(), Ok(1));
    drop(s2);
    assert_eq!(r2.recv(), Err(mpmc::RecvError));
    assert_eq!(r2.try_recv(), Err(mpmc::TryRecvError::Disconnected));
    let (s, r) = mpmc::bounded::<i32>(1);
    drop(r);
    assert_eq!(s.send(7), Err(mpmc::SendError(7)));
    assert_eq!(s.try_send(8), Err(mpmc::TrySendError::Disconnected(8)));
    assert_eq!(
        s.send_timeout(9, Duration::from_secs(1)),
        Err(mpmc::SendTimeoutError::Disconnected(9))
    );
}

#[test]
fn mpmc_timeouts_return_values() {
    let (s, r) = mpmc::bounded::<String>(0);
    let start = Instant::now();
    let err = s
        .send_timeout("x".into(), Duration::from_millis(20))
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(err.into_inner(), "x");
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert_eq!(
        r.recv_timeout(Duration::from_millis(10)),
        Err(mpmc::RecvTimeoutError::Timeout)
    );
    assert_eq!(r.try_recv(), Err(mpmc::TryRecvError::Empty));
}

#[test]
fn mpmc_each_message_goes_to_one_receiver() {
    let rt = rt();
    let (s, r) = mpmc::bounded(4);
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let r = r.clone();
            rt.spawn(move || r.iter().collect::<Vec<u32>>())
        })
        .collect();
    drop(r);
    for i in 0..1000 {
        s.send(i).unwrap();
    }
    drop(s);
    let mut all: Vec<u32> = consumers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(all, (0..1000).collect::<Vec<_>>());
}

#[test]
fn mpmc_blocked_sender_gets_value_back_when_receivers_drop() {
    let rt = rt();
    let (s, r) = mpmc::bounded::<Box<i32>>(1);
    s.send(Box::new(1)).unwrap();
    let (ready_tx, ready_rx) = mpmc::bounded::<()>(0);
    let sender = rt.spawn(move || {
        ready_tx.send(()).unwrap();
        s.send(Box::new(2))
    });
    ready_rx.recv().unwrap();
    drop(r);
    assert_eq!(sender.join().unwrap(), Err(mpmc::SendError(Box::new(2))));
}

#[test]
fn mpmc_blocked_receiver_wakes_on_disconnect() {
    let rt = rt();
    let (s, r) = mpmc::unbounded::<i32>();
    let receivers: Vec<_> = (0..3)
        .map(|_| {
            let r = r.clone();
            rt.spawn(move || r.recv())
        })
        .collect();
    let t = thread::spawn(move || r.recv());
    drop(s);
    for h in receivers {
        assert_eq!(h.join().unwrap(), Err(mpmc::RecvError));
    }
    assert_eq!(t.join().unwrap(), Err(mpmc::RecvError));
}

#[test]
fn mpmc_error_traits() {
    fn is_error<E: std::error::Error + PartialEq + Eq + Clone>(_: &E) {}
    is_error(&mpmc::SendError(1));
    is_error(&mpmc::TrySendError::Full(1));
    is_error(&mpmc::SendTimeoutError::Timeout(1));
    is_error(&mpmc::RecvError);
    is_error(&mpmc::TryRecvError::Empty);
    is_error(&mpmc::RecvTimeoutError::Timeout);
    assert_eq!(
        mpmc::SendError(1).to_string(),
        "sending on a disconnected channel"
    );
    assert_eq!(format!("{:?}", mpmc::TrySendError::Full(1)), "Full(..)");
    assert_eq!(
        mpmc::RecvError.to_string(),
        "receiving on an empty and disconnected channel"
    );
    assert!(mpmc::TryRecvError::Disconnected.is_disconnected());
    assert!(mpmc::RecvTimeoutError::Timeout.is_timeout());
}

#[test]
fn mpmc_iter_try_iter_into_iter() {
    let (s, r) = mpmc::unbounded();
    s.send(1).unwrap();
    s.send(2).unwrap();
    assert_eq!(r.try_iter().collect::<Vec<_>>(), vec![1, 2]);
    s.send(3).unwrap();
    drop(s);
    assert_eq!(r.iter().collect::<Vec<_>>(), vec![3]);
    let (s, r) = mpmc::unbounded();
    s.send(4).unwrap();
    drop(s);
    assert_eq!(r.into_iter().collect::<Vec<_>>(), vec![4]);
}

#[test]
fn mpmc_rendezvous_between_thread_and_fiber() {
    let rt = rt();
    let (s, r) = mpmc::bounded::<u32>(0);
    let fiber = rt.spawn(move || (0..500).map(|_| r.recv().unwrap()).sum::<u32>());
    for i in 0..500 {
        s.send(i).unwrap();
    }
    assert_eq!(fiber.join().unwrap(), 499 * 500 / 2);
}

#[test]
fn cancelled_receiver_does_not_swallow_messages() {
    let rt = rt();
    let (s, r) = mpmc::bounded::<u32>(0);
    let (ready_tx, ready_rx) = mpmc::bounded::<()>(0);
    let r2 = r.clone();
    let victim = rt.spawn(move || {
        ready_tx.send(()).unwrap();
        r2.recv()
    });
    ready_rx.recv().unwrap();
    victim.cancel();
    match victim.join() {
        Err(e) => assert!(e.downcast_ref::<Cancelled>().is_some()),
        // The message may have been handed over before the cancel landed;
        // then it must have been returned, not dropped.
        Ok(v) => assert_eq!(v, Err(mpmc::RecvError), "nothing was sent yet"),
    }
    let other = rt.spawn(move || r.recv().unwrap());
    s.send(11).unwrap();
    assert_eq!(other.join().unwrap(), 11);
}

// ---------------------------------------------------------------- oneshot

#[test]
fn oneshot_delivers_once() {
    let rt = rt();
    let (tx, rx) = oneshot::channel();
    let f = rt.spawn(move || rx.recv());
    assert!(!tx.is_closed());
    tx.send("done").unwrap();
    assert_eq!(f.join().unwrap(), Ok("done"));
}

#[test]
fn oneshot_dropped_sender_is_an_error() {
    let (tx, rx) = oneshot::channel::<i32>();
    assert_eq!(rx.try_recv(), Err(std_mpsc::TryRecvError::Empty));
    drop(tx);
    assert_eq!(rx.recv(), Err(std_mpsc::RecvError));
}

#[test]
fn oneshot_dropped_receiver_returns_value() {
    let (tx, rx) = oneshot::channel();
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.send(3), Err(3));
}

#[test]
fn oneshot_recv_timeout() {
    let (tx, rx) = oneshot::channel();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(10)),
        Err(std_mpsc::RecvTimeoutError::Timeout)
    );
    tx.send(1).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_millis(10)), Ok(1));
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(10)),
        Err(std_mpsc::RecvTimeoutError::Disconnected)
    );
}
