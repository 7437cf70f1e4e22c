//! `block_on`: drive a `Future` to completion from a fiber or a plain thread.
//!
//! # Protocol
//! One `Notify` per call, shared (as an `Arc`) by the loop and every clone of
//! the `Waker` it hands to the future:
//! - `notified: AtomicBool` — "the future asked to be polled again";
//! - `unparker` — the calling fiber or thread (fixed for the call).
//!
//! | step                           | who          | effect                          |
//! |--------------------------------|--------------|---------------------------------|
//! | `wake` / `wake_by_ref`         | any thread   | `notified := true`; if it was   |
//! |                                |              | false, `unparker.unpark()`      |
//! | poll returned `Pending`        | caller       | loop: `swap(notified, false)`;  |
//! |                                |              | true → poll again, else park    |
//!
//! A wake between the poll and the park is not lost: it set `notified`
//! before unparking, and `park` keeps the token of an early unpark. Spurious
//! park returns (tokens left by other primitives) find `notified == false`
//! and park again, so the future is polled only when it asked to be. The
//! flag is swapped with acquire-release ordering, so what the waker wrote
//! before waking is visible to the poll that follows.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::park::{self, Unparker};

/// The waker's shared state (module docs).
struct Notify {
    notified: AtomicBool,
    unparker: Unparker,
}

impl Wake for Notify {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            self.unparker.unpark();
        }
    }
}

/// Runs `future` to completion on the calling fiber or thread and returns its
/// output.
///
/// On a fiber, the fiber parks whenever the future is pending, so the worker
/// runs other fibers meanwhile; on a plain thread, the thread parks. The
/// future's `Waker` may be called from any thread (for example a tokio or
/// async-std runtime's thread, a callback, another fiber); each wake polls the
/// future again, and nothing polls it without a wake.
///
/// The future runs on the caller's own stack: `block_on` needs no runtime and
/// no `Send` bound. Futures that need a specific async runtime's reactor (a
/// tokio `TcpStream`, a tokio timer) still need that runtime to be running
/// somewhere (for tokio: inside its context, e.g. via a `Handle::enter` guard).
///
/// Cancellation: if the calling fiber is cancelled while the future is
/// pending, the future is dropped as the fiber unwinds (its destructors run)
/// and `JoinHandle::join` reports `Cancelled`.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let notify = Arc::new(Notify {
        notified: AtomicBool::new(false),
        unparker: Unparker::current(),
    });
    let waker = Waker::from(notify.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        while !notify.notified.swap(false, Ordering::AcqRel) {
            park::park(&"parked: future");
            park::check_cancel();
        }
    }
}
