//! `std::sync::mpsc` for fibers and threads: the same functions, types and
//! error types (std's own error types are re-exported, so code matching on
//! them keeps working). Built on the `mpmc` channel core (`chan.rs`); the
//! `Receiver` is not `Clone` and not `Sync`, as std's.

pub use std::sync::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use super::chan::{self, Chan};
use super::mpmc::{recv_until, send_until, RawChan};
use super::waitq::Arc;

/// An unbounded channel, like [`std::sync::mpsc::channel`]: `send` never
/// waits.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(None));
    (Sender { chan: chan.clone() }, Receiver::new(chan))
}

/// A bounded channel, like [`std::sync::mpsc::sync_channel`]: `send` waits
/// while `bound` messages are buffered; `bound == 0` makes every send wait
/// for a receiver (rendezvous).
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(Some(bound)));
    (SyncSender { chan: chan.clone() }, Receiver::new(chan))
}

/// The sending half of [`channel`], like [`std::sync::mpsc::Sender`].
pub struct Sender<T> {
    pub(super) chan: Arc<RawChan<T>>,
}

/// The sending half of [`sync_channel`], like [`std::sync::mpsc::SyncSender`].
pub struct SyncSender<T> {
    pub(super) chan: Arc<RawChan<T>>,
}

/// The receiving half, like [`std::sync::mpsc::Receiver`] (one owner, not
/// `Sync`).
pub struct Receiver<T> {
    pub(super) chan: Arc<RawChan<T>>,
    _not_sync: PhantomData<Cell<()>>,
}

fn send_blocking<T>(chan: &RawChan<T>, t: T) -> Result<(), SendError<T>> {
    match send_until(chan, t, None) {
        Ok(()) => Ok(()),
        Err(chan::SendError::Disconnected(t) | chan::SendError::Timeout(t)) => Err(SendError(t)),
    }
}

impl<T> Sender<T> {
    /// Sends a message; never waits.
    ///
    /// # Errors
    /// The receiver is gone; the message is returned.
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        send_blocking(&self.chan, t)
    }
}

impl<T> SyncSender<T> {
    /// Sends, waiting for room (or, with bound 0, for the receiver).
    ///
    /// # Errors
    /// The receiver is gone; the message is returned.
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        send_blocking(&self.chan, t)
    }

    /// Sends if there is room (or, with bound 0, a waiting receiver) now.
    ///
    /// # Errors
    /// `Full` or `Disconnected`; the message is returned.
    pub fn try_send(&self, t: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(t).map_err(|e| match e {
            chan::TrySendError::Full(t) => TrySendError::Full(t),
            chan::TrySendError::Disconnected(t) => TrySendError::Disconnected(t),
        })
    }
}

impl<T> Receiver<T> {
    fn new(chan: Arc<RawChan<T>>) -> Receiver<T> {
        Receiver {
            chan,
            _not_sync: PhantomData,
        }
    }

    /// Receives, waiting for a message. Buffered messages are still
    /// delivered after every sender is gone.
    ///
    /// # Errors
    /// Empty, and every sender is gone.
    pub fn recv(&self) -> Result<T, RecvError> {
        recv_until(&self.chan, None).map_err(|_| RecvError)
    }

    /// Receives a message that is ready now.
    ///
    /// # Errors
    /// `Empty`, or `Disconnected` (empty and every sender gone).
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv().map_err(|e| match e {
            chan::TryRecvError::Empty => TryRecvError::Empty,
            chan::TryRecvError::Disconnected => TryRecvError::Disconnected,
        })
    }

    /// Receives, waiting at most `timeout`.
    ///
    /// # Errors
    /// `Timeout`, or `Disconnected` (empty and every sender gone).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.recv_deadline(deadline),
            None => self.recv().map_err(|_| RecvTimeoutError::Disconnected),
        }
    }

    /// Receives, waiting until `deadline` at most.
    ///
    /// # Errors
    /// `Timeout`, or `Disconnected` (empty and every sender gone).
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        recv_until(&self.chan, Some(deadline)).map_err(|e| match e {
            chan::RecvError::Timeout => RecvTimeoutError::Timeout,
            chan::RecvError::Disconnected => RecvTimeoutError::Disconnected,
        })
    }

    /// A blocking iterator; it ends when every sender is gone and the buffer
    /// is drained.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the messages ready now; it never waits.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.chan.add_sender();
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Clone for SyncSender<T> {
    fn clone(&self) -> SyncSender<T> {
        self.chan.add_sender();
        SyncSender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> Drop for SyncSender<T> {
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

impl<T> fmt::Debug for SyncSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncSender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// Blocking iterator over a [`Receiver`] (see [`Receiver::iter`]).
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

/// Non-blocking iterator over a [`Receiver`] (see [`Receiver::try_iter`]).
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

/// Owning blocking iterator over a [`Receiver`].
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
