//! `select!` semantics: syntax forms, readiness, defaults, timeouts,
//! disconnection, fairness and no lost messages.

use std::collections::HashSet;
use std::thread;
use std::time::{Duration, Instant};

use threadlet::fiber::Cancelled;
use threadlet::sync::{mpmc, mpsc};
use threadlet::Runtime;

fn rt() -> Runtime {
    Runtime::builder().workers(2).build().unwrap()
}

#[test]
fn recv_arm_takes_ready_message() {
    let (s1, r1) = mpmc::unbounded::<i32>();
    let (_s2, r2) = mpmc::unbounded::<i32>();
    s1.send(5).unwrap();
    let got = threadlet::select! {
        recv(r1) -> v => v.unwrap(),
        recv(r2) -> v => v.unwrap() + 100,
    };
    assert_eq!(got, 5);
}

#[test]
fn send_arm_sends_when_room() {
    let (s, r) = mpmc::bounded(1);
    let (_s2, r2) = mpmc::unbounded::<i32>();
    threadlet::select! {
        send(s, 3) -> res => assert_eq!(res, Ok(())),
        recv(r2) -> _v => panic!("nothing to receive"),
    }
    assert_eq!(r.try_recv(), Ok(3));
}

#[test]
fn default_runs_when_nothing_is_ready() {
    let (_s, r) = mpmc::unbounded::<i32>();
    let (s2, _r2) = mpmc::bounded::<i32>(0);
    let mut hit = false;
    threadlet::select! {
        recv(r) -> _v => {}
        send(s2, 1) -> _res => {}
        default => hit = true,
    }
    assert!(hit);
}

#[test]
fn default_timeout_fires_after_timeout() {
    let (_s, r) = mpmc::unbounded::<i32>();
    let start = Instant::now();
    let timed_out = threadlet::select! {
        recv(r) -> _v => false,
        default(Duration::from_millis(30)) => true,
    };
    assert!(timed_out);
    assert!(start.elapsed() >= Duration::from_millis(30));
}

#[test]
fn default_timeout_on_fiber() {
    let timed_out = threadlet::run(|| {
        let (_s, r) = mpmc::unbounded::<i32>();
        threadlet::select! {
            recv(r) -> _v => false,
            default(Duration::from_millis(20)) => true,
        }
    });
    assert!(timed_out);
}

#[test]
fn disconnected_recv_arm_is_ready_with_error() {
    let (s, r) = mpmc::unbounded::<i32>();
    drop(s);
    let res = threadlet::select! {
        recv(r) -> v => v,
        default(Duration::from_secs(30)) => panic!("a disconnected channel is ready"),
    };
    assert_eq!(res, Err(mpmc::RecvError));
}

#[test]
fn send_arm_on_disconnected_channel_returns_message() {
    let (s, r) = mpmc::bounded::<String>(0);
    drop(r);
    let res = threadlet::select! {
        send(s, "msg".to_string()) -> res => res,
    };
    assert_eq!(res, Err(mpmc::SendError("msg".to_string())));
}

#[test]
fn blocking_select_is_woken_by_a_thread() {
    let (s1, r1) = mpmc::unbounded::<i32>();
    let (_s2, r2) = mpmc::bounded::<i32>(0);
    let got = threadlet::run(move || {
        let t = thread::spawn(move || s1.send(9).unwrap());
        let v = threadlet::select! {
            recv(r1) -> v => v.unwrap(),
            recv(r2) -> v => v.unwrap() * 1000,
        };
        t.join().unwrap();
        v
    });
    assert_eq!(got, 9);
}

#[test]
fn select_on_mpsc_ends_and_refs() {
    let (tx, rx) = mpsc::channel::<u8>();
    let (stx, srx) = mpsc::sync_channel::<u8>(1);
    tx.send(1).unwrap();
    let rref = &rx;
    let a = threadlet::select! {
        recv(rref) -> v => v.unwrap(),
    };
    assert_eq!(a, 1);
    threadlet::select! {
        send(stx, 2) -> res => res.unwrap(),
    }
    assert_eq!(srx.recv(), Ok(2));
    drop(tx);
    let e = threadlet::select! { recv(rx) -> v => v };
    assert_eq!(e, Err(std::sync::mpsc::RecvError));
}

#[test]
fn blocking_send_arm_completes_with_rendezvous_receiver() {
    let rt = rt();
    let (s, r) = mpmc::bounded::<u32>(0);
    let (_s2, r2) = mpmc::bounded::<u32>(0);
    let receiver = rt.spawn(move || r.recv().unwrap());
    let res = threadlet::select! {
        send(s, 77) -> res => res,
        recv(r2) -> _v => panic!("nobody sends on r2"),
    };
    assert_eq!(res, Ok(()));
    assert_eq!(receiver.join().unwrap(), 77);
}

#[test]
fn select_does_not_pair_with_itself() {
    // Both a send and a receive on one rendezvous channel: with nobody else
    // around, neither may complete (a select cannot meet itself).
    let (s, r) = mpmc::bounded::<i32>(0);
    let timed_out = threadlet::select! {
        send(s, 1) -> _res => false,
        recv(r) -> _v => false,
        default(Duration::from_millis(30)) => true,
    };
    assert!(timed_out);
}

#[test]
fn select_is_fair_between_ready_arms() {
    let (s1, r1) = mpmc::unbounded::<()>();
    let (s2, r2) = mpmc::unbounded::<()>();
    let mut counts = [0usize; 2];
    for _ in 0..2000 {
        s1.send(()).unwrap();
        s2.send(()).unwrap();
        threadlet::select! {
            recv(r1) -> _v => counts[0] += 1,
            recv(r2) -> _v => counts[1] += 1,
        }
        // Drain the other so both stay ready once per round.
        let _ = r1.try_recv();
        let _ = r2.try_recv();
    }
    assert!(counts[0] > 600 && counts[1] > 600, "unfair: {counts:?}");
}

#[test]
fn select_bodies_can_use_control_flow() {
    let (s, r) = mpmc::unbounded::<i32>();
    for i in 0..5 {
        s.send(i).unwrap();
    }
    drop(s);
    let mut sum = 0;
    loop {
        threadlet::select! {
            recv(r) -> v => match v {
                Ok(v) => sum += v,
                Err(_) => break,
            },
        }
    }
    assert_eq!(sum, 10);
}

#[test]
fn no_message_lost_between_selects_on_rendezvous_channels() {
    // Two selecting consumers on two zero-capacity channels, two producers:
    // every message is received exactly once.
    let rt = rt();
    let n = 500u32;
    let (s1, r1) = mpmc::bounded::<u32>(0);
    let (s2, r2) = mpmc::bounded::<u32>(0);
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let (r1, r2) = (r1.clone(), r2.clone());
            rt.spawn(move || {
                let mut got = Vec::new();
                let mut open = (true, true);
                while open.0 || open.1 {
                    threadlet::select! {
                        recv(r1) -> v => match v { Ok(v) => got.push(v), Err(_) => open.0 = false },
                        recv(r2) -> v => match v { Ok(v) => got.push(v), Err(_) => open.1 = false },
                    }
                }
                got
            })
        })
        .collect();
    drop((r1, r2));
    let p1 = rt.spawn(move || (0..n).for_each(|i| s1.send(i).unwrap()));
    let p2 = thread::spawn(move || (n..2 * n).for_each(|i| s2.send(i).unwrap()));
    p1.join().unwrap();
    p2.join().unwrap();
    let mut all = HashSet::new();
    for c in consumers {
        for v in c.join().unwrap() {
            assert!(all.insert(v), "duplicate {v}");
        }
    }
    assert_eq!(all.len(), 2 * n as usize);
}

#[test]
fn empty_select_waits_until_cancelled() {
    let rt = rt();
    let (ready_tx, ready_rx) = mpmc::bounded::<()>(0);
    let h = rt.spawn(move || {
        ready_tx.send(()).unwrap();
        threadlet::select! {}
    });
    ready_rx.recv().unwrap();
    h.cancel();
    assert!(h.join().unwrap_err().downcast_ref::<Cancelled>().is_some());
}
