//! The channel core under `mpmc`, `mpsc`, `oneshot` and `select!`. Pure:
//! only `super::waitq` and std/loom, so `tests/loom_sync.rs` checks this
//! exact code.
//!
//! # Layout
//! One internal mutex guards everything mutable: the buffer, the wait list
//! of blocked senders (each entry's packet holds the message it wants to
//! send), the wait list of blocked receivers (each entry's packet is an empty
//! slot), and the two "all handles of one side dropped" flags. Handle counts
//! are atomics; the last drop of a side takes the mutex to disconnect.
//!
//! # Invariants (under the mutex)
//! - a *live* receiver entry exists only while the buffer is empty;
//! - a *live* sender entry exists only while the buffer is full (capacity
//!   `Some(n)`; for `Some(0)`, a rendezvous channel, always).
//!
//! # Direct handoff (no hints, so no wake can be lost)
//! Every blocked operation is *completed by its counterpart* under the mutex:
//! - a sender that finds a receiver entry puts the message in its packet and
//!   selects its waiter (`waitq.rs`); if the selection fails (the receiver
//!   timed out, was cancelled, or a `select!` waiter was already taken by
//!   another channel) it takes the message back and tries the next entry;
//! - a receiver that takes from a full buffer refills it with the first live
//!   blocked sender's message; on a rendezvous channel it takes the message
//!   straight from that sender's packet. It takes the message, then selects;
//!   if the selection fails it puts the message back.
//!
//! So a woken waiter never has to retry: a receiver finds its message in its
//! packet, a sender knows its message was taken (empty packet). A `select!`
//! waiter is completed by exactly one channel, and its entries in the other
//! channels are dead: those channels skip them and serve the next waiter, so
//! a select never swallows a message meant for others.
//!
//! # Disconnection
//! The last sender's drop sets `tx_gone` and selects every receiver entry
//! with its packet empty ("disconnected"). The last receiver's drop sets
//! `rx_gone`, drops the buffered messages (after unlocking) and selects every
//! sender entry with its message still in the packet, so `send` returns it in
//! the error.
//!
//! Messages are always dropped outside the mutex (their `Drop` may use the
//! channel). Waiters are woken after the mutex is released.

use std::collections::VecDeque;

#[cfg(all(loom, test))]
use loom::cell::UnsafeCell;
#[cfg(all(loom, test))]
use loom::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(all(loom, test)))]
use std::cell::UnsafeCell;
#[cfg(not(all(loom, test)))]
use std::sync::atomic::{AtomicUsize, Ordering};

use super::waitq::{self, lock, Arc, Mutex, WaitList, Waiter, Wake};

/// The message slot shared by a blocked operation and its counterpart.
///
/// Access rules (they make the slot race-free without a lock of its own):
/// 1. a counterpart touches it only while holding the channel mutex and
///    while the entry is still listed (or just popped by itself), and only
///    *before* its selection CAS on the waiter, or after that CAS failed;
/// 2. the owner touches it only after observing its own selection (acquire,
///    pairing with the counterpart's CAS), or after it removed its entry under
///    the channel mutex (then no counterpart can reach it any more, and every
///    earlier access happened under that mutex).
pub(crate) struct Packet<T>(UnsafeCell<Option<T>>);

// SAFETY: the access rules above serialise every access to the slot (through
// the channel mutex or the waiter's acquire/release selection), so sharing a
// packet between threads only moves a `T` from one thread to another.
unsafe impl<T: Send> Sync for Packet<T> {}

impl<T> std::fmt::Debug for Packet<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Packet")
    }
}

impl<T> Packet<T> {
    /// A packet holding `value` (a sender's) or nothing (a receiver's).
    pub(crate) fn new(value: Option<T>) -> Arc<Packet<T>> {
        Arc::new(Packet(UnsafeCell::new(value)))
    }

    /// Swaps the slot's content.
    ///
    /// # Safety
    /// The caller follows the access rules in the type's docs.
    unsafe fn replace(&self, value: Option<T>) -> Option<T> {
        #[cfg(not(all(loom, test)))]
        // SAFETY: exclusive access per the caller's contract.
        return unsafe { std::mem::replace(&mut *self.0.get(), value) };
        #[cfg(all(loom, test))]
        // SAFETY: exclusive access per the caller's contract (loom checks it).
        return self
            .0
            .with_mut(|p| unsafe { std::mem::replace(&mut *p, value) });
    }

    /// Puts a message in (see [`Packet::replace`]).
    ///
    /// # Safety
    /// As [`Packet::replace`].
    unsafe fn put(&self, value: T) {
        // SAFETY: forwarded contract.
        let old = unsafe { self.replace(Some(value)) };
        debug_assert!(old.is_none(), "packet already full");
    }

    /// Takes the message out (see [`Packet::replace`]).
    ///
    /// # Safety
    /// As [`Packet::replace`].
    pub(crate) unsafe fn take(&self) -> Option<T> {
        // SAFETY: forwarded contract.
        unsafe { self.replace(None) }
    }
}

/// Why a non-blocking send failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TrySendError<T> {
    /// The buffer is full (or nobody waits on a rendezvous channel).
    Full(T),
    /// Every receiver is gone.
    Disconnected(T),
}

/// Why a blocking send failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SendError<T> {
    /// `park` said stop (deadline passed or cancelled).
    Timeout(T),
    /// Every receiver is gone.
    Disconnected(T),
}

/// Why a non-blocking receive failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TryRecvError {
    /// Nothing to receive yet.
    Empty,
    /// Empty, and every sender is gone.
    Disconnected,
}

/// Why a blocking receive failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecvError {
    /// `park` said stop (deadline passed or cancelled).
    Timeout,
    /// Empty, and every sender is gone.
    Disconnected,
}

type Entries<T, W> = WaitList<W, Arc<Packet<T>>>;
type Woken<W> = Option<Arc<Waiter<W>>>;

#[derive(Debug)]
struct Inner<T, W> {
    queue: VecDeque<T>,
    senders: Entries<T, W>,
    receivers: Entries<T, W>,
    tx_gone: bool,
    rx_gone: bool,
}

/// A channel (module docs). `cap`: `None` unbounded, `Some(0)` rendezvous.
#[derive(Debug)]
pub(crate) struct Chan<T, W> {
    inner: Mutex<Inner<T, W>>,
    cap: Option<usize>,
    tx_count: AtomicUsize,
    rx_count: AtomicUsize,
}

fn wake<W: Wake>(w: Woken<W>) {
    if let Some(w) = w {
        w.wake();
    }
}

impl<T, W: Wake> Chan<T, W> {
    /// A channel with one sender and one receiver handle counted.
    pub(crate) fn new(cap: Option<usize>) -> Chan<T, W> {
        Chan {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                senders: WaitList::new(),
                receivers: WaitList::new(),
                tx_gone: false,
                rx_gone: false,
            }),
            cap,
            tx_count: AtomicUsize::new(1),
            rx_count: AtomicUsize::new(1),
        }
    }

    /// The capacity (`None`: unbounded).
    pub(crate) fn capacity(&self) -> Option<usize> {
        self.cap
    }

    /// Messages in the buffer.
    pub(crate) fn len(&self) -> usize {
        lock(&self.inner).queue.len()
    }

    /// Counts a new sender handle.
    pub(crate) fn add_sender(&self) {
        self.tx_count.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a new receiver handle.
    pub(crate) fn add_receiver(&self) {
        self.rx_count.fetch_add(1, Ordering::Relaxed);
    }

    /// A sender handle is dropped; the last one disconnects the receivers.
    pub(crate) fn drop_sender(&self) {
        if self.tx_count.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut inner = lock(&self.inner);
            inner.tx_gone = true;
            let woken = inner.receivers.select_all();
            drop(inner);
            woken.iter().for_each(|w| w.wake());
        }
    }

    /// A receiver handle is dropped; the last one disconnects the senders
    /// and drops the buffered messages.
    pub(crate) fn drop_receiver(&self) {
        if self.rx_count.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut inner = lock(&self.inner);
            inner.rx_gone = true;
            let woken = inner.senders.select_all();
            let buffered = std::mem::take(&mut inner.queue);
            drop(inner);
            woken.iter().for_each(|w| w.wake());
            drop(buffered);
        }
    }

    /// Is every receiver gone?
    pub(crate) fn is_rx_gone(&self) -> bool {
        lock(&self.inner).rx_gone
    }

    fn has_room(&self, inner: &Inner<T, W>) -> bool {
        match self.cap {
            None => true,
            Some(c) => inner.queue.len() < c,
        }
    }

    /// Under the mutex: delivers to a blocked receiver or buffers.
    fn try_send_locked(
        &self,
        inner: &mut Inner<T, W>,
        value: T,
    ) -> Result<Woken<W>, TrySendError<T>> {
        if inner.rx_gone {
            return Err(TrySendError::Disconnected(value));
        }
        let mut value = value;
        while let Some(e) = inner.receivers.pop_front() {
            // SAFETY: rule 1: under the mutex, entry just popped by us,
            // before our CAS (and the take-back after it failed).
            unsafe { e.payload.put(value) };
            if e.waiter.try_select(e.token) {
                return Ok(Some(e.waiter));
            }
            // SAFETY: rule 1, after the CAS failed.
            value = unsafe { e.payload.take() }.expect("message put back");
        }
        if self.has_room(inner) {
            inner.queue.push_back(value);
            return Ok(None);
        }
        Err(TrySendError::Full(value))
    }

    /// Under the mutex: takes the first live blocked sender's message.
    fn take_sender(inner: &mut Inner<T, W>) -> Option<(T, Arc<Waiter<W>>)> {
        while let Some(e) = inner.senders.pop_front() {
            // SAFETY: rule 1: under the mutex, entry just popped by us,
            // before our CAS (and the put-back after it failed).
            let Some(value) = (unsafe { e.payload.take() }) else {
                continue;
            };
            if e.waiter.try_select(e.token) {
                return Some((value, e.waiter));
            }
            // SAFETY: rule 1, after the CAS failed.
            unsafe { e.payload.put(value) };
        }
        None
    }

    /// Under the mutex: receives from the buffer or a blocked sender.
    fn try_recv_locked(inner: &mut Inner<T, W>) -> Result<(T, Woken<W>), TryRecvError> {
        if let Some(value) = inner.queue.pop_front() {
            let woken = Self::take_sender(inner).map(|(refill, w)| {
                inner.queue.push_back(refill);
                w
            });
            return Ok((value, woken));
        }
        if let Some((value, w)) = Self::take_sender(inner) {
            return Ok((value, Some(w)));
        }
        if inner.tx_gone {
            Err(TryRecvError::Disconnected)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// Sends without waiting.
    pub(crate) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut inner = lock(&self.inner);
        let result = self.try_send_locked(&mut inner, value);
        drop(inner);
        result.map(wake)
    }

    /// Receives without waiting.
    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut inner = lock(&self.inner);
        let result = Self::try_recv_locked(&mut inner);
        drop(inner);
        result.map(|(value, w)| {
            wake(w);
            value
        })
    }

    /// Sends, waiting for room (or a receiver). `waker`/`park` as in
    /// `waitq::wait`; `Timeout` when `park` said stop.
    pub(crate) fn send(
        &self,
        value: T,
        waker: impl FnOnce() -> W,
        park: impl FnMut() -> bool,
    ) -> Result<(), SendError<T>> {
        let mut inner = lock(&self.inner);
        let value = match self.try_send_locked(&mut inner, value) {
            Ok(w) => {
                drop(inner);
                wake(w);
                return Ok(());
            }
            Err(TrySendError::Disconnected(value)) => return Err(SendError::Disconnected(value)),
            Err(TrySendError::Full(value)) => value,
        };
        let waiter = Arc::new(Waiter::new(waker()));
        let packet = Packet::new(Some(value));
        inner.senders.push_back(waiter.clone(), 1, packet.clone());
        drop(inner);
        match waitq::wait(&waiter, park) {
            // Taken (empty packet), or disconnected (message still there).
            // SAFETY: rule 2: we observed our selection.
            Some(_) => match unsafe { packet.take() } {
                None => Ok(()),
                Some(value) => Err(SendError::Disconnected(value)),
            },
            None => {
                lock(&self.inner).senders.remove(&waiter);
                // SAFETY: rule 2: our entry is gone from the list.
                let value = unsafe { packet.take() }.expect("unsent message");
                Err(SendError::Timeout(value))
            }
        }
    }

    /// Receives, waiting for a message. `Timeout` when `park` said stop.
    pub(crate) fn recv(
        &self,
        waker: impl FnOnce() -> W,
        park: impl FnMut() -> bool,
    ) -> Result<T, RecvError> {
        let mut inner = lock(&self.inner);
        match Self::try_recv_locked(&mut inner) {
            Ok((value, w)) => {
                drop(inner);
                wake(w);
                return Ok(value);
            }
            Err(TryRecvError::Disconnected) => return Err(RecvError::Disconnected),
            Err(TryRecvError::Empty) => {}
        }
        let waiter = Arc::new(Waiter::new(waker()));
        let packet = Packet::new(None);
        inner.receivers.push_back(waiter.clone(), 1, packet.clone());
        drop(inner);
        match waitq::wait(&waiter, park) {
            // SAFETY: rule 2: we observed our selection.
            Some(_) => unsafe { packet.take() }.ok_or(RecvError::Disconnected),
            None => {
                lock(&self.inner).receivers.remove(&waiter);
                Err(RecvError::Timeout)
            }
        }
    }
}

/// What a `select!` arm completed with.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome<T> {
    /// Received this message / sent (`T = ()`).
    Done(T),
    /// The channel is disconnected; a send arm gets its message back.
    Disconnected(T),
}

/// One arm of a `select!` (module `select.rs` drives them).
pub(crate) trait SelectOp<W> {
    /// Completes the operation now if it can; `true` if it did.
    fn try_complete(&mut self) -> bool;
    /// Publishes `waiter` with `token`; `true` if the operation is ready now
    /// (the caller then retries instead of waiting).
    fn register(&mut self, waiter: &Arc<Waiter<W>>, token: usize) -> bool;
    /// Removes what `register` published.
    fn unregister(&mut self, waiter: &Arc<Waiter<W>>);
    /// The waiter was selected with this arm's token: collect the result.
    fn complete_selected(&mut self);
}

impl<W, O: SelectOp<W> + ?Sized> SelectOp<W> for &mut O {
    fn try_complete(&mut self) -> bool {
        (**self).try_complete()
    }
    fn register(&mut self, waiter: &Arc<Waiter<W>>, token: usize) -> bool {
        (**self).register(waiter, token)
    }
    fn unregister(&mut self, waiter: &Arc<Waiter<W>>) {
        (**self).unregister(waiter)
    }
    fn complete_selected(&mut self) {
        (**self).complete_selected()
    }
}

/// A receive arm.
#[derive(Debug)]
pub(crate) struct RecvOp<'a, T, W> {
    chan: &'a Chan<T, W>,
    packet: Option<Arc<Packet<T>>>,
    /// `Done(message)` or `Disconnected(())`.
    pub(crate) result: Option<Outcome<Option<T>>>,
}

impl<'a, T, W> RecvOp<'a, T, W> {
    /// A receive arm on `chan`.
    pub(crate) fn new(chan: &'a Chan<T, W>) -> Self {
        RecvOp {
            chan,
            packet: None,
            result: None,
        }
    }
}

impl<T, W: Wake> SelectOp<W> for RecvOp<'_, T, W> {
    fn try_complete(&mut self) -> bool {
        match self.chan.try_recv() {
            Ok(value) => self.result = Some(Outcome::Done(Some(value))),
            Err(TryRecvError::Disconnected) => self.result = Some(Outcome::Disconnected(None)),
            Err(TryRecvError::Empty) => return false,
        }
        true
    }

    fn register(&mut self, waiter: &Arc<Waiter<W>>, token: usize) -> bool {
        self.packet = None;
        let mut inner = lock(&self.chan.inner);
        if !inner.queue.is_empty() || inner.tx_gone || inner.senders.has_live_other(waiter) {
            return true;
        }
        let packet = Packet::new(None);
        inner
            .receivers
            .push_back(waiter.clone(), token, packet.clone());
        self.packet = Some(packet);
        false
    }

    fn unregister(&mut self, waiter: &Arc<Waiter<W>>) {
        if self.packet.is_some() {
            lock(&self.chan.inner).receivers.remove(waiter);
        }
    }

    fn complete_selected(&mut self) {
        let packet = self.packet.take().expect("selected arm was registered");
        // SAFETY: rule 2: the select observed the selection with our token
        // (and has removed all its entries).
        self.result = Some(match unsafe { packet.take() } {
            Some(value) => Outcome::Done(Some(value)),
            None => Outcome::Disconnected(None),
        });
    }
}

/// A send arm; holds its message until it is sent or the arm is dropped.
#[derive(Debug)]
pub(crate) struct SendOp<'a, T, W> {
    chan: &'a Chan<T, W>,
    message: Option<T>,
    packet: Option<Arc<Packet<T>>>,
    /// `Done(None)` or `Disconnected(Some(message))`.
    pub(crate) result: Option<Outcome<Option<T>>>,
}

impl<'a, T, W> SendOp<'a, T, W> {
    /// A send arm of `message` on `chan`.
    pub(crate) fn new(chan: &'a Chan<T, W>, message: T) -> Self {
        SendOp {
            chan,
            message: Some(message),
            packet: None,
            result: None,
        }
    }
}

impl<T, W: Wake> SelectOp<W> for SendOp<'_, T, W> {
    fn try_complete(&mut self) -> bool {
        if let Some(packet) = self.packet.take() {
            // Back from an unsuccessful wait: the message is in the packet.
            // SAFETY: rule 2: `unregister` removed our entry.
            self.message = unsafe { packet.take() };
        }
        let message = self.message.take().expect("send arm has its message");
        match self.chan.try_send(message) {
            Ok(()) => self.result = Some(Outcome::Done(None)),
            Err(TrySendError::Disconnected(m)) => {
                self.result = Some(Outcome::Disconnected(Some(m)))
            }
            Err(TrySendError::Full(m)) => {
                self.message = Some(m);
                return false;
            }
        }
        true
    }

    fn register(&mut self, waiter: &Arc<Waiter<W>>, token: usize) -> bool {
        let mut inner = lock(&self.chan.inner);
        if inner.rx_gone || self.chan.has_room(&inner) || inner.receivers.has_live_other(waiter) {
            return true;
        }
        let packet = Packet::new(self.message.take());
        inner
            .senders
            .push_back(waiter.clone(), token, packet.clone());
        self.packet = Some(packet);
        false
    }

    fn unregister(&mut self, waiter: &Arc<Waiter<W>>) {
        if self.packet.is_some() {
            lock(&self.chan.inner).senders.remove(waiter);
        }
    }

    fn complete_selected(&mut self) {
        let packet = self.packet.take().expect("selected arm was registered");
        // SAFETY: rule 2: the select observed the selection with our token.
        self.result = Some(match unsafe { packet.take() } {
            None => Outcome::Done(None),
            Some(message) => Outcome::Disconnected(Some(message)),
        });
    }
}

/// Runs a select over `ops`, trying them in order from `start` (the caller
/// randomises it, for fairness). Returns the index of the completed arm, or
/// `None` if none was ready and `block` is false, or `park` said stop.
///
/// Protocol: try every arm; if none completes, publish one waiter in every
/// arm (an arm that turns out ready aborts the waiter and the select starts
/// over), wait until one channel selects it, then remove it from all the
/// others *before* returning (an entry's packet stays valid only while the
/// select is inside this function) and collect the selected arm's result.
pub(crate) fn select<W: Wake, O: SelectOp<W>>(
    ops: &mut [O],
    start: usize,
    block: bool,
    mut waker: impl FnMut() -> W,
    mut park: impl FnMut() -> bool,
) -> Option<usize> {
    let n = ops.len();
    let order = |k: usize| (start + k) % n.max(1);
    loop {
        for k in 0..n {
            if ops[order(k)].try_complete() {
                return Some(order(k));
            }
        }
        if !block {
            return None;
        }
        let waiter = Arc::new(Waiter::new(waker()));
        let mut published = 0;
        let mut ready = false;
        while published < n && !ready {
            let i = order(published);
            ready = ops[i].register(&waiter, i + 1);
            published += 1;
        }
        let outcome = if ready {
            if waiter.try_abort() {
                None
            } else {
                waiter.selected()
            }
        } else {
            waitq::wait(&waiter, &mut park)
        };
        for k in 0..published {
            ops[order(k)].unregister(&waiter);
        }
        match outcome {
            Some(token) => {
                ops[token - 1].complete_selected();
                return Some(token - 1);
            }
            None if ready => continue,
            None => return None,
        }
    }
}
