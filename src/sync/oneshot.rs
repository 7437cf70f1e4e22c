//! One-shot channels: one message, one sender, one receiver. Built on the
//! channel core (`chan.rs`) with capacity 1; the sender is consumed by
//! `send`, so it can never block. Errors are std's `mpsc` ones.

pub use std::sync::mpsc::{RecvError, RecvTimeoutError, TryRecvError};

use std::fmt;
use std::time::Duration;

use super::chan::{self, Chan};
use super::deadline_after;
use super::mpmc::{recv_until, RawChan};
use super::waitq::Arc;

/// A one-shot channel.
///
/// ```
/// use threadlet::sync::oneshot;
///
/// threadlet::run(|| {
///     let (tx, rx) = oneshot::channel();
///     threadlet::spawn(move || tx.send(7).unwrap());
///     assert_eq!(rx.recv(), Ok(7));
/// });
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(Some(1)));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// Sends the one message.
pub struct Sender<T> {
    chan: Arc<RawChan<T>>,
}

/// Receives the one message.
pub struct Receiver<T> {
    chan: Arc<RawChan<T>>,
}

impl<T> Sender<T> {
    /// Sends the message; never waits.
    ///
    /// # Errors
    /// The receiver is gone; the message is returned.
    pub fn send(self, value: T) -> Result<(), T> {
        self.chan.try_send(value).map_err(|e| match e {
            chan::TrySendError::Full(v) | chan::TrySendError::Disconnected(v) => v,
        })
    }

    /// Is the receiver gone (a `send` would fail)?
    pub fn is_closed(&self) -> bool {
        self.chan.is_rx_gone()
    }
}

impl<T> Receiver<T> {
    /// Waits for the message.
    ///
    /// # Errors
    /// The sender was dropped without sending.
    pub fn recv(self) -> Result<T, RecvError> {
        recv_until(&self.chan, None).map_err(|_| RecvError)
    }

    /// Waits at most `timeout` for the message (the receiver stays usable).
    ///
    /// # Errors
    /// `Timeout`, or `Disconnected` (the sender was dropped without sending,
    /// or the message was already received).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        recv_until(&self.chan, deadline_after(timeout)).map_err(|e| match e {
            chan::RecvError::Timeout => RecvTimeoutError::Timeout,
            chan::RecvError::Disconnected => RecvTimeoutError::Disconnected,
        })
    }

    /// Takes the message if it is there now.
    ///
    /// # Errors
    /// `Empty`, or `Disconnected` (no message will ever come).
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv().map_err(|e| match e {
            chan::TryRecvError::Empty => TryRecvError::Empty,
            chan::TryRecvError::Disconnected => TryRecvError::Disconnected,
        })
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.drop_receiver();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}
