//! `block_on`: drive a `Future` to completion from a fiber or a plain thread.
//!
//! # Protocol
//! One `Completion<()>` per call (park/completion.rs), shared (as an `Arc`)
//! by the loop and every clone of the `Waker` it hands to the future: a wake
//! is `set(())`, and wakes that come while one is pending collapse into it.
//! After a `Pending` poll the loop waits for the completion, which takes the
//! wake (the slot is empty again) and polls once more. A wake between the
//! poll and the wait is kept in the slot, so none is lost; tokens left by
//! other primitives find the slot empty and park again, so the future is
//! polled only when it asked to be. What the waker wrote before waking is
//! visible to the poll that follows (the completion's lock orders them).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::park::{self, Completion, WaitReason};

/// The waker's shared state (module docs).
struct Notify(Completion<()>);

impl Wake for Notify {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.set(());
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
/// pending, the future is dropped as the fiber unwinds, before `join` on that
/// fiber returns `Cancelled`: whatever the future owns (a sub-future, a
/// timer, a connection, a task handle whose `Drop` cancels) is released
/// then. Work the future only started somewhere else (a task detached on
/// another async runtime) is that runtime's to stop.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let notify = Arc::new(Notify(Completion::new()));
    let waker = Waker::from(notify.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        if notify.0.wait(WaitReason::Future).is_err() {
            // Cancelled: unwinding drops the pinned future here, on this
            // fiber, before `join` on the fiber can return.
            park::unwind_cancelled();
        }
    }
}
