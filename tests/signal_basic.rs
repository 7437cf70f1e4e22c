//! Tests of `threadlet::signal::Signals`. Own binary: they change process-wide
//! signal dispositions. Each test uses its own signal numbers, so they may run
//! in parallel.
use std::io;
use std::mem;
use std::os::raw::c_int;
use std::ptr;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use threadlet::signal::Signals;
use threadlet::Runtime;

/// Sends `sig` to this process (the kernel picks the thread).
fn kill_self(sig: c_int) {
    // SAFETY: kill(2) on our own pid with a valid signal number.
    assert_eq!(unsafe { libc::kill(libc::getpid(), sig) }, 0);
}

/// Raises `sig` on the calling thread; its handler has run when this returns.
fn raise(sig: c_int) {
    // SAFETY: raise(3) with a valid signal number.
    assert_eq!(unsafe { libc::raise(sig) }, 0);
}

/// The current handler address of `sig`.
fn handler_of(sig: c_int) -> libc::sighandler_t {
    // SAFETY: a zeroed sigaction is valid output space; a null new action
    // only queries.
    unsafe {
        let mut old: libc::sigaction = mem::zeroed();
        assert_eq!(libc::sigaction(sig, ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

#[test]
fn wait_on_fiber_returns_signal_sent_from_another_thread() {
    let got = threadlet::run(|| {
        let signals = Signals::new(&[libc::SIGUSR1]).unwrap();
        let sender = thread::spawn(|| kill_self(libc::SIGUSR1));
        let got = signals.wait_timeout(Duration::from_secs(10)).unwrap();
        sender.join().unwrap();
        got
    });
    assert_eq!(got, libc::SIGUSR1);
}

#[test]
fn wait_on_plain_thread() {
    let signals = Signals::new(&[libc::SIGUSR2]).unwrap();
    let sender = thread::spawn(|| kill_self(libc::SIGUSR2));
    assert_eq!(
        signals.wait_timeout(Duration::from_secs(10)).unwrap(),
        libc::SIGUSR2
    );
    sender.join().unwrap();
}

#[test]
fn iterator_yields_each_signal() {
    let signals = Signals::new(&[libc::SIGALRM]).unwrap();
    let (ack_tx, ack_rx) = mpsc::channel::<()>();
    let sender = thread::spawn(move || {
        for _ in 0..3 {
            kill_self(libc::SIGALRM);
            if ack_rx.recv_timeout(Duration::from_secs(10)).is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    for sig in &signals {
        got.push(sig);
        ack_tx.send(()).unwrap();
        if got.len() == 3 {
            break;
        }
    }
    sender.join().unwrap();
    assert_eq!(got, [libc::SIGALRM; 3]);
}

#[test]
fn every_signals_for_a_signal_receives_it() {
    let a = Signals::new(&[libc::SIGWINCH]).unwrap();
    let b = Signals::new(&[libc::SIGWINCH, libc::SIGWINCH]).unwrap();
    kill_self(libc::SIGWINCH);
    assert_eq!(
        a.wait_timeout(Duration::from_secs(10)).unwrap(),
        libc::SIGWINCH
    );
    assert_eq!(
        b.wait_timeout(Duration::from_secs(10)).unwrap(),
        libc::SIGWINCH
    );
}

/// SIGURG is raised (handled) before SIGVTALRM, so once `later` has seen
/// SIGVTALRM the dispatcher has already queued SIGURG for `earlier`.
#[test]
fn try_next_and_pending_drain_without_waiting() {
    let earlier = Signals::new(&[libc::SIGURG]).unwrap();
    let later = Signals::new(&[libc::SIGVTALRM]).unwrap();
    assert_eq!(earlier.try_next(), None);
    raise(libc::SIGURG);
    raise(libc::SIGVTALRM);
    assert_eq!(
        later.wait_timeout(Duration::from_secs(10)).unwrap(),
        libc::SIGVTALRM
    );
    assert_eq!(earlier.pending().collect::<Vec<_>>(), [libc::SIGURG]);
    assert_eq!(earlier.try_next(), None);
}

#[test]
fn wait_timeout_times_out() {
    let signals = Signals::new(&[libc::SIGXFSZ]).unwrap();
    let err = signals.wait_timeout(Duration::from_millis(30)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
}

/// One worker: the raising fiber can only run if the waiting one parked.
#[test]
fn wait_parks_the_fiber_not_the_worker() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let got = rt.block_on(|| {
        let signals = Signals::new(&[libc::SIGIO]).unwrap();
        let waiter = threadlet::spawn(move || signals.wait_timeout(Duration::from_secs(10)));
        threadlet::yield_now();
        kill_self(libc::SIGIO);
        waiter.join().unwrap()
    });
    assert_eq!(got.unwrap(), libc::SIGIO);
}

#[test]
fn dropping_the_last_signals_restores_the_previous_disposition() {
    let sig = libc::SIGPWR;
    // SAFETY: ignoring SIGPWR has no effect on this test process.
    unsafe { libc::signal(sig, libc::SIG_IGN) };
    let a = Signals::new(&[sig]).unwrap();
    let b = Signals::new(&[sig]).unwrap();
    assert_ne!(handler_of(sig), libc::SIG_IGN);
    drop(a);
    assert_ne!(handler_of(sig), libc::SIG_IGN, "b still wants the signal");
    drop(b);
    assert_eq!(handler_of(sig), libc::SIG_IGN);
}

#[test]
fn invalid_signals_are_rejected_with_a_reason() {
    let cases: [(c_int, &str); 10] = [
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGSTOP, "SIGSTOP"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGBUS, "SIGBUS"),
        (libc::SIGILL, "SIGILL"),
        (libc::SIGFPE, "SIGFPE"),
        (0, "out of range"),
        (-1, "out of range"),
        (65, "out of range"),
        (32, "reserved"),
    ];
    for (sig, word) in cases {
        let err = Signals::new(&[sig]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "signal {sig}");
        let msg = err.to_string();
        assert!(
            msg.contains(word) && msg.contains(&sig.to_string()),
            "signal {sig}: {msg}"
        );
    }
    let empty = Signals::new(&[]).unwrap_err();
    assert_eq!(empty.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn a_rejected_list_installs_nothing() {
    let before = handler_of(libc::SIGTTIN);
    let err = Signals::new(&[libc::SIGTTIN, libc::SIGKILL]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(handler_of(libc::SIGTTIN), before);
}
