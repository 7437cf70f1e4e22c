//! Multi-producer multi-consumer channels with crossbeam-channel's API and
//! semantics: both ends are `Clone`, a channel is disconnected when every
//! handle of one side is dropped, `bounded(0)` is a rendezvous channel.
//!
//! The handles here are thin: the protocol (direct handoff, disconnection,
//! FIFO among blocked senders and among blocked receivers) lives in
//! `chan.rs`, which `tests/loom_sync.rs` model-checks. Blocking calls park a
//! fiber or block a thread; a cancelled fiber unwinds from them (a message
//! it was sending is dropped; a message already delivered to it is returned
//! first, and it unwinds at its next park).

mod error;

pub use error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};

use std::fmt;
use std::time::{Duration, Instant};

use super::chan::{self, Chan};
use super::waitq::Arc;
use super::{cancel_requested, deadline_after, parker, unwind_cancelled};
use crate::park::{Unparker, WaitReason};

/// The channel core as used by the public handles.
pub(super) type RawChan<T> = Chan<T, Unparker>;

/// Blocking send shared by `mpmc`, `mpsc` and `oneshot`: `Timeout` only when
/// `deadline` passed (a cancelled fiber unwinds from here).
pub(super) fn send_until<T>(
    chan: &RawChan<T>,
    msg: T,
    deadline: Option<Instant>,
) -> Result<(), chan::SendError<T>> {
    let result = chan.send(
        msg,
        Unparker::current,
        parker(deadline, WaitReason::ChannelSend),
    );
    if let Err(chan::SendError::Timeout(msg)) = result {
        if cancel_requested() {
            drop(msg);
            unwind_cancelled();
        }
        return Err(chan::SendError::Timeout(msg));
    }
    result
}

/// Blocking receive shared by `mpmc`, `mpsc` and `oneshot`: `Timeout` only
/// when `deadline` passed (a cancelled fiber unwinds from here).
pub(super) fn recv_until<T>(
    chan: &RawChan<T>,
    deadline: Option<Instant>,
) -> Result<T, chan::RecvError> {
    let result = chan.recv(Unparker::current, parker(deadline, WaitReason::ChannelRecv));
    if matches!(result, Err(chan::RecvError::Timeout)) && cancel_requested() {
        unwind_cancelled();
    }
    result
}

/// A channel of unlimited capacity: `send` never waits.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    pair(None)
}

/// A channel holding at most `cap` messages: `send` waits while it is full.
/// With `cap == 0` every send waits for a receiver (rendezvous).
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    pair(Some(cap))
}

fn pair<T>(cap: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(cap));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// The sending side of an [`mpmc`](self) channel. `Clone` adds a sender.
pub struct Sender<T> {
    pub(super) chan: Arc<RawChan<T>>,
}

/// The receiving side of an [`mpmc`](self) channel. `Clone` adds a receiver;
/// each message goes to one receiver.
pub struct Receiver<T> {
    pub(super) chan: Arc<RawChan<T>>,
}

impl<T> Sender<T> {
    /// Sends, waiting for room (or, with capacity 0, for a receiver).
    ///
    /// # Errors
    /// Every receiver is gone; the message is returned.
    pub fn send(&self, msg: T) -> Result<(), SendError<T>> {
        match send_until(&self.chan, msg, None) {
            Ok(()) => Ok(()),
            Err(chan::SendError::Disconnected(m) | chan::SendError::Timeout(m)) => {
                Err(SendError(m))
            }
        }
    }

    /// Sends if possible right now.
    ///
    /// # Errors
    /// `Full` (no room, or no waiting receiver with capacity 0) or
    /// `Disconnected`; the message is returned.
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(msg).map_err(|e| match e {
            chan::TrySendError::Full(m) => TrySendError::Full(m),
            chan::TrySendError::Disconnected(m) => TrySendError::Disconnected(m),
        })
    }

    /// Sends, waiting at most `timeout`.
    ///
    /// # Errors
    /// `Timeout` or `Disconnected`; the message is returned.
    pub fn send_timeout(&self, msg: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_deadline_inner(msg, deadline_after(timeout))
    }

    /// Sends, waiting until `deadline` at most.
    ///
    /// # Errors
    /// `Timeout` or `Disconnected`; the message is returned.
    pub fn send_deadline(&self, msg: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.send_deadline_inner(msg, Some(deadline))
    }

    fn send_deadline_inner(
        &self,
        msg: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        send_until(&self.chan, msg, deadline).map_err(|e| match e {
            chan::SendError::Timeout(m) => SendTimeoutError::Timeout(m),
            chan::SendError::Disconnected(m) => SendTimeoutError::Disconnected(m),
        })
    }

    /// Is the buffer empty?
    pub fn is_empty(&self) -> bool {
        self.chan.len() == 0
    }

    /// Is the buffer full? (Always, with capacity 0.)
    pub fn is_full(&self) -> bool {
        self.chan.capacity().is_some_and(|c| self.chan.len() >= c)
    }

    /// Messages in the buffer.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// The capacity; `None` for an unbounded channel.
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// Do both handles belong to the same channel?
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
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

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Sender { .. }")
    }
}

impl<T> Receiver<T> {
    /// Receives, waiting for a message.
    ///
    /// # Errors
    /// The channel is empty and every sender is gone.
    pub fn recv(&self) -> Result<T, RecvError> {
        recv_until(&self.chan, None).map_err(|_| RecvError)
    }

    /// Receives if a message is ready right now.
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
        self.recv_deadline_inner(deadline_after(timeout))
    }

    /// Receives, waiting until `deadline` at most.
    ///
    /// # Errors
    /// `Timeout`, or `Disconnected` (empty and every sender gone).
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_deadline_inner(Some(deadline))
    }

    fn recv_deadline_inner(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        recv_until(&self.chan, deadline).map_err(|e| match e {
            chan::RecvError::Timeout => RecvTimeoutError::Timeout,
            chan::RecvError::Disconnected => RecvTimeoutError::Disconnected,
        })
    }

    /// A blocking iterator; it ends when the channel is empty and
    /// disconnected.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the messages ready now; it never waits.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Is the buffer empty?
    pub fn is_empty(&self) -> bool {
        self.chan.len() == 0
    }

    /// Is the buffer full? (Always, with capacity 0.)
    pub fn is_full(&self) -> bool {
        self.chan.capacity().is_some_and(|c| self.chan.len() >= c)
    }

    /// Messages in the buffer.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// The capacity; `None` for an unbounded channel.
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// Do both handles belong to the same channel?
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Receiver<T> {
        self.chan.add_receiver();
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.drop_receiver();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Receiver { .. }")
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
