//! `select!`: wait on several channel operations at once, with
//! crossbeam-channel's syntax, without spawning anything per arm.
//!
//! Protocol (implemented and documented in `chan.rs`, `select`): try every
//! arm from a random start; if none is ready and the select may block,
//! publish *one* waiter in every arm's channel, wait until one channel
//! completes its operation (direct handoff: a sender puts its message in the
//! arm's packet, a receiver takes the arm's message) and selects the waiter,
//! then remove the waiter from every other channel before returning. The
//! waiter can be selected once only, so the other channels see dead entries
//! and serve their next waiter: a select never takes a message it does not
//! return, with any capacity including 0.
//!
//! The macro evaluates each channel expression and each send arm's message
//! once, in order, on entry (as Go does). Unlike crossbeam-channel, which
//! evaluates a message only for the arm it selects, the messages of the arms
//! that are not selected are dropped.

use std::fmt;
use std::time::{Duration, Instant};

use super::chan::{Outcome, RecvOp, SelectOp, SendOp};
use super::waitq::Arc;
use super::{cancel_requested, deadline_after, mpmc, mpsc, parker, unwind_cancelled, Waiter};
use crate::park::{Unparker, WaitReason};

/// Selects from a set of channel operations, like crossbeam-channel's
/// `select!`: waits until one of them can proceed, performs it, and runs its
/// arm. If several are ready, a random one is chosen.
///
/// Arms:
/// - `recv(r) -> msg => body` where `r` is an [`mpmc::Receiver`] or an
///   [`mpsc::Receiver`] (or a reference to one); `msg` is a `Result` of the
///   message or the channel's `RecvError` (empty and disconnected);
/// - `send(s, m) -> res => body` where `s` is an [`mpmc::Sender`],
///   [`mpsc::Sender`] or [`mpsc::SyncSender`]; `res` is `Ok(())` or the
///   channel's `SendError` holding `m`;
/// - `default => body`: run if no operation is ready right now;
/// - `default(timeout) => body`: run if none became ready within `timeout`.
///
/// A disconnected channel counts as ready (its arm gets the error). Every
/// channel expression and every `send` message is evaluated once on entry;
/// the messages of the arms not chosen are dropped (crossbeam evaluates a
/// message only for the chosen arm). `select! {}` waits forever.
///
/// ```
/// use std::time::Duration;
/// use threadlet::sync::mpmc;
///
/// threadlet::run(|| {
///     let (s1, r1) = mpmc::unbounded::<i32>();
///     let (s2, r2) = mpmc::bounded::<i32>(1);
///     s1.send(10).unwrap();
///     threadlet::select! {
///         recv(r1) -> msg => assert_eq!(msg, Ok(10)),
///         send(s2, 20) -> res => assert_eq!(res, Ok(())),
///         default(Duration::from_secs(1)) => panic!("both arms were ready"),
///     }
/// });
/// ```
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__threadlet_select!(@parse [] [] $($tokens)*)
    };
}

/// Implementation detail of [`select!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __threadlet_select {
    // ---- parse: normalise each arm into (kind op (args) [pat] {body}) ----
    (@parse [$($arms:tt)*] [$($def:tt)*]) => {
        $crate::__threadlet_select!(@gen [$($arms)*] [] [$($def)*])
    };
    (@parse [$($arms:tt)*] [$($def:tt)*]
        recv($r:expr $(,)?) -> $v:pat => $body:block , $($rest:tt)*) => {
        $crate::__threadlet_select!(@parse [$($arms)* (recv __op ($r) [$v] { $body })] [$($def)*] $($rest)*)
    };
    (@parse [$($arms:tt)*] [$($def:tt)*]
        recv($r:expr $(,)?) -> $v:pat => $body:block $($rest:tt)*) => {
        $crate::__threadlet_select!(@parse [$($arms)* (recv __op ($r) [$v] { $body })] [$($def)*] $($rest)*)
    };
    (@parse [$($arms:tt)*] [$($def:tt)*]
        recv($r:expr $(,)?) -> $v:pat => $body:expr , $($rest:tt)*) => {
        $crate::__threadlet_select!(@parse [$($arms)* (recv __op ($r) [$v] { $body })] [$($def)*] $($rest)*)
    };
    (@parse [$($arms:tt)*] [$($def:tt)*]
        recv($r:expr $(,)?) -> $v:pat => $body:expr) => {
        $crate::__threadlet_select!(@parse [$($arms)* (recv __op ($r) [$v] { $body })] [$($def)*])
    };
    (@parse [$($arms:tt)*] [$($def:tt)*]
        send($s:expr, $m:expr $(,)?) -> $v:pat => $body:block , $($rest:tt)*) => {
        $crate::__threadlet_select!(@parse [$($arms)* (send __op ($s, $m) [$v] { $body })] [$($def)*] $($rest)*)
    };
    (@parse [$($arms:tt)*] [$($def:tt)*]
        send($s:expr, $m:expr $(,)?) -> $v:pat => $body:block $($rest:tt)*) => {
        $crate::__threadlet_select!(@parse [$($arms)* (send __op ($s, $m) [$v] { $body })] [$($def)*] $($rest)*)
    };
    (@parse [$($arms:tt)*] [$($def:tt)*]
        send($s:expr, $m:expr $(,)?) -> $v:pat => $body:expr , $($rest:tt)*) => {
        $crate::__threadlet_select!(@parse [$($arms)* (send __op ($s, $m) [$v] { $body })] [$($def)*] $($rest)*)
    };
    (@parse [$($arms:tt)*] [$($def:tt)*]
        send($s:expr, $m:expr $(,)?) -> $v:pat => $body:expr) => {
        $crate::__threadlet_select!(@parse [$($arms)* (send __op ($s, $m) [$v] { $body })] [$($def)*])
    };
    (@parse [$($arms:tt)*] [] default => $body:block , $($rest:tt)*) => {
        $crate::__threadlet_select!(@parse [$($arms)*] [(Never) { $body }] $($rest)*)
    };
    (@parse [$($arms:tt)*] [] default => $body:block $($rest:tt)*) => {
        $crate::__threadlet_select!(@parse [$($arms)*] [(Never) { $body }] $($rest)*)
    };
    (@parse [$($arms:tt)*] [] default => $body:expr , $($rest:tt)*) => {
        $crate::__threadlet_select!(@parse [$($arms)*] [(Never) { $body }] $($rest)*)
    };
    (@parse [$($arms:tt)*] [] default => $body:expr) => {
        $crate::__threadlet_select!(@parse [$($arms)*] [(Never) { $body }])
    };
    (@parse [$($arms:tt)*] [] default($t:expr $(,)?) => $body:block , $($rest:tt)*) => {
        $crate::__threadlet_select!(@parse [$($arms)*] [(Timeout($t)) { $body }] $($rest)*)
    };
    (@parse [$($arms:tt)*] [] default($t:expr $(,)?) => $body:block $($rest:tt)*) => {
        $crate::__threadlet_select!(@parse [$($arms)*] [(Timeout($t)) { $body }] $($rest)*)
    };
    (@parse [$($arms:tt)*] [] default($t:expr $(,)?) => $body:expr , $($rest:tt)*) => {
        $crate::__threadlet_select!(@parse [$($arms)*] [(Timeout($t)) { $body }] $($rest)*)
    };
    (@parse [$($arms:tt)*] [] default($t:expr $(,)?) => $body:expr) => {
        $crate::__threadlet_select!(@parse [$($arms)*] [(Timeout($t)) { $body }])
    };
    (@parse [$($arms:tt)*] [$($def:tt)+] default $($rest:tt)*) => {
        ::core::compile_error!("threadlet::select!: at most one `default` arm is allowed")
    };
    (@parse [$($arms:tt)*] [$($def:tt)*] $($rest:tt)+) => {
        ::core::compile_error!(
            "threadlet::select!: expected `recv(r) -> v => body`, `send(s, m) -> v => body`, \
             `default => body` or `default(timeout) => body`"
        )
    };

    // ---- gen: bind each arm (the match keeps temporaries alive) ----
    (@gen [(recv $op:ident ($r:expr) [$v:pat] $body:tt) $($rest:tt)*] [$($done:tt)*] [$($def:tt)*]) => {
        match $crate::sync::__private::recv_arm(&$r) {
            mut $op => $crate::__threadlet_select!(@gen [$($rest)*] [$($done)* ($op [$v] $body)] [$($def)*]),
        }
    };
    (@gen [(send $op:ident ($s:expr, $m:expr) [$v:pat] $body:tt) $($rest:tt)*] [$($done:tt)*] [$($def:tt)*]) => {
        match $crate::sync::__private::send_arm(&$s, $m) {
            mut $op => $crate::__threadlet_select!(@gen [$($rest)*] [$($done)* ($op [$v] $body)] [$($def)*]),
        }
    };
    (@gen [] [$(($op:ident [$v:pat] $body:tt))*] []) => {{
        $crate::sync::__private::select(&mut [$($op.arm()),*], $crate::sync::__private::Mode::Block);
        $(let $op = $op.into_result();)*
        $crate::__threadlet_select!(@dispatch [$(($op [$v] $body))*] { ::core::unreachable!("select! returned without a ready arm") })
    }};
    (@gen [] [$(($op:ident [$v:pat] $body:tt))*] [(Never) $dbody:tt]) => {{
        $crate::sync::__private::select(&mut [$($op.arm()),*], $crate::sync::__private::Mode::Never);
        $(let $op = $op.into_result();)*
        $crate::__threadlet_select!(@dispatch [$(($op [$v] $body))*] $dbody)
    }};
    (@gen [] [$(($op:ident [$v:pat] $body:tt))*] [(Timeout($t:expr)) $dbody:tt]) => {{
        $crate::sync::__private::select(
            &mut [$($op.arm()),*],
            $crate::sync::__private::Mode::timeout($t),
        );
        $(let $op = $op.into_result();)*
        $crate::__threadlet_select!(@dispatch [$(($op [$v] $body))*] $dbody)
    }};

    // ---- dispatch: run the arm whose result is set ----
    (@dispatch [] $else:tt) => { $else };
    (@dispatch [($op:ident [$v:pat] $body:tt) $($rest:tt)*] $else:tt) => {
        if let ::core::option::Option::Some(__threadlet_result) = $op {
            let $v = __threadlet_result;
            $body
        } else {
            $crate::__threadlet_select!(@dispatch [$($rest)*] $else)
        }
    };
}

/// How a select waits when no arm is ready.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Wait until an arm is ready.
    Block,
    /// Never wait (a `default` arm).
    Never,
    /// Wait until this deadline (`None`: it overflowed; wait forever).
    Until(Option<Instant>),
}

impl Mode {
    /// `default(timeout)`.
    pub fn timeout(timeout: Duration) -> Mode {
        Mode::Until(deadline_after(timeout))
    }
}

/// One arm as the select loop sees it.
#[doc(hidden)]
pub struct Arm<'a>(&'a mut dyn SelectOp<Unparker>);

impl fmt::Debug for Arm<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arm").finish_non_exhaustive()
    }
}

impl SelectOp<Unparker> for Arm<'_> {
    fn try_complete(&mut self) -> bool {
        self.0.try_complete()
    }
    fn register(&mut self, waiter: &Arc<Waiter>, token: usize) -> bool {
        self.0.register(waiter, token)
    }
    fn unregister(&mut self, waiter: &Arc<Waiter>) {
        self.0.unregister(waiter)
    }
    fn complete_selected(&mut self) {
        self.0.complete_selected()
    }
}

/// A `recv` arm.
#[doc(hidden)]
pub struct RecvArm<'a, T, E> {
    op: RecvOp<'a, T, Unparker>,
    error: fn() -> E,
}

impl<T, E> fmt::Debug for RecvArm<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvArm").finish_non_exhaustive()
    }
}

impl<T, E> RecvArm<'_, T, E> {
    /// The arm for the select loop.
    pub fn arm(&mut self) -> Arm<'_> {
        Arm(&mut self.op)
    }

    /// `None` if not chosen, else what the arm binds.
    pub fn into_result(self) -> Option<Result<T, E>> {
        match self.op.result? {
            Outcome::Done(Some(msg)) => Some(Ok(msg)),
            Outcome::Done(None) | Outcome::Disconnected(_) => Some(Err((self.error)())),
        }
    }
}

/// A `send` arm.
#[doc(hidden)]
pub struct SendArm<'a, T, E> {
    op: SendOp<'a, T, Unparker>,
    error: fn(T) -> E,
}

impl<T, E> fmt::Debug for SendArm<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendArm").finish_non_exhaustive()
    }
}

impl<T, E> SendArm<'_, T, E> {
    /// The arm for the select loop.
    pub fn arm(&mut self) -> Arm<'_> {
        Arm(&mut self.op)
    }

    /// `None` if not chosen, else what the arm binds.
    pub fn into_result(self) -> Option<Result<(), E>> {
        match self.op.result? {
            Outcome::Done(_) => Some(Ok(())),
            Outcome::Disconnected(msg) => Some(Err((self.error)(msg.expect("message given back")))),
        }
    }
}

/// A channel end that `recv(..)` accepts.
#[doc(hidden)]
pub trait SelectRecv {
    /// The message type.
    type Item;
    /// The channel's "disconnected" error.
    type Error;
    /// The arm for this receiver.
    fn __recv_arm(&self) -> RecvArm<'_, Self::Item, Self::Error>;
}

/// A channel end that `send(..)` accepts.
#[doc(hidden)]
pub trait SelectSend {
    /// The message type.
    type Item;
    /// The channel's "disconnected" error (holding the message).
    type Error;
    /// The arm for this sender.
    fn __send_arm(&self, msg: Self::Item) -> SendArm<'_, Self::Item, Self::Error>;
}

impl<R: SelectRecv + ?Sized> SelectRecv for &R {
    type Item = R::Item;
    type Error = R::Error;
    fn __recv_arm(&self) -> RecvArm<'_, R::Item, R::Error> {
        (**self).__recv_arm()
    }
}

impl<S: SelectSend + ?Sized> SelectSend for &S {
    type Item = S::Item;
    type Error = S::Error;
    fn __send_arm(&self, msg: S::Item) -> SendArm<'_, S::Item, S::Error> {
        (**self).__send_arm(msg)
    }
}

impl<T> SelectRecv for mpmc::Receiver<T> {
    type Item = T;
    type Error = mpmc::RecvError;
    fn __recv_arm(&self) -> RecvArm<'_, T, mpmc::RecvError> {
        RecvArm {
            op: RecvOp::new(&self.chan),
            error: || mpmc::RecvError,
        }
    }
}

impl<T> SelectRecv for mpsc::Receiver<T> {
    type Item = T;
    type Error = mpsc::RecvError;
    fn __recv_arm(&self) -> RecvArm<'_, T, mpsc::RecvError> {
        RecvArm {
            op: RecvOp::new(&self.chan),
            error: || mpsc::RecvError,
        }
    }
}

impl<T> SelectSend for mpmc::Sender<T> {
    type Item = T;
    type Error = mpmc::SendError<T>;
    fn __send_arm(&self, msg: T) -> SendArm<'_, T, mpmc::SendError<T>> {
        SendArm {
            op: SendOp::new(&self.chan, msg),
            error: mpmc::SendError,
        }
    }
}

impl<T> SelectSend for mpsc::Sender<T> {
    type Item = T;
    type Error = mpsc::SendError<T>;
    fn __send_arm(&self, msg: T) -> SendArm<'_, T, mpsc::SendError<T>> {
        SendArm {
            op: SendOp::new(&self.chan, msg),
            error: mpsc::SendError,
        }
    }
}

impl<T> SelectSend for mpsc::SyncSender<T> {
    type Item = T;
    type Error = mpsc::SendError<T>;
    fn __send_arm(&self, msg: T) -> SendArm<'_, T, mpsc::SendError<T>> {
        SendArm {
            op: SendOp::new(&self.chan, msg),
            error: mpsc::SendError,
        }
    }
}

/// `recv(r)`: the arm for `r`.
#[doc(hidden)]
pub fn recv_arm<R: SelectRecv + ?Sized>(r: &R) -> RecvArm<'_, R::Item, R::Error> {
    r.__recv_arm()
}

/// `send(s, msg)`: the arm for `s`.
#[doc(hidden)]
pub fn send_arm<S: SelectSend + ?Sized>(s: &S, msg: S::Item) -> SendArm<'_, S::Item, S::Error> {
    s.__send_arm(msg)
}

/// Runs the select (see the module docs). On return at most one arm has a
/// result: none only for `Mode::Never`, or `Mode::Until` after its deadline.
#[doc(hidden)]
pub fn select(arms: &mut [Arm<'_>], mode: Mode) {
    let start = if arms.len() > 1 {
        crate::context::random_below(arms.len())
    } else {
        0
    };
    let (block, deadline) = match mode {
        Mode::Block => (true, None),
        Mode::Never => (false, None),
        Mode::Until(deadline) => (true, deadline),
    };
    loop {
        let done = super::chan::select(
            arms,
            start,
            block,
            Unparker::current,
            parker(deadline, WaitReason::Select),
        );
        if done.is_some() || !block {
            return;
        }
        if cancel_requested() {
            unwind_cancelled();
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
    }
}
