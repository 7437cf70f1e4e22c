//! The worker loop: find a fiber, resume it, act on why it stopped.
//!
//! Order of search (each step only if the previous found nothing):
//! 1. due timers fire (they push their fibers onto this run queue);
//! 2. every 61st tick: the global injector first (fairness for spawns from
//!    outside), and a non-blocking peek at the reactor if nobody polls (at
//!    most every 100 µs);
//! 3. the inbox (wakes from other threads) is moved to the back of the
//!    private run queue whenever it is not empty;
//! 4. on every other tick the fresh deque (own spawns) first, then the run
//!    queue, then the fresh deque, then the injector — so new fibers and
//!    woken ones share the worker and neither starves;
//! 5. as a *searcher*: steal half of a random sibling's fresh deque (and look
//!    at the injector and the inbox), a few rounds with a spin between that
//!    watches the inbox. How long it spins is learned from what ended its
//!    last idle periods (`idle::SpinBudget`): ~1 µs after work from its own
//!    poller or timers, longer after work from other threads, up to the
//!    wake latency it measured when another thread woke it from a short
//!    sleep — so a reply from a fiber on another worker finds it spinning;
//! 6. idle: block in its own poller's `epoll_wait`, no longer than until the
//!    nearest timer; other threads wake it through the poller's waker.
//!
//! After a resume: a yield goes to the back of the run queue; a park is
//! committed (park.rs) — if a wake arrived meanwhile the fiber goes back on
//! the run queue; a finished fiber gives its stack back and leaves the
//! registry.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_deque::{Steal, Worker as Deque};

use super::idle::{SpinBudget, Woken};
use super::{RunQueue, Shared};
use crate::context;
use crate::fiber::{lock, FiberRef, Suspend};
use crate::reactor::Poller;
use crate::stack::{self, StackCache};
use crate::time::Timers;

/// How many rounds a searcher tries to steal before going idle.
const SEARCH_ROUNDS: usize = 4;
/// The injector is looked at first once every this many ticks.
const FAIRNESS_TICKS: u32 = 61;
/// A busy worker peeks at the reactor at most this often.
const PEEK_INTERVAL: Duration = Duration::from_micros(100);
/// How long a searcher leaves a busy sibling's lone fresh fiber to it
/// (`Local::steal_from`). Go uses 3 µs; here 1–2 of 60 ping-pong runs still
/// started their two ends apart with 3 µs (a runtime's first spawn can take
/// longer than that to reach its park), 0 of 100 with 20 µs.
const LONE_GRACE: Duration = Duration::from_micros(20);
/// A search round that spins at least this long peeks at the reactor after.
const SPIN_PEEK: Duration = Duration::from_micros(8);

/// The worker's own state; lives on the worker thread's stack for the
/// thread's whole life. Other threads never touch it.
pub(crate) struct Local {
    pub(crate) index: usize,
    pub(crate) shared: Arc<Shared>,
    run_queue: RefCell<RunQueue>,
    pub(crate) fresh: Deque<FiberRef>,
    pub(crate) timers: RefCell<Timers>,
    pub(crate) stacks: RefCell<StackCache>,
    tick: Cell<u32>,
    /// Does this worker hold a count of the searcher counter (idle.rs)?
    searching: Cell<bool>,
    /// How long its next search spins (idle.rs, "How long a searcher
    /// spins"): learned from what ended its last idle periods.
    spin: SpinBudget,
    /// Which sibling (and at which of its switch counts) this worker,
    /// searching, last left a lone fresh fiber to, and since when
    /// (`steal_from`); cleared by its next steal.
    lone_since: Cell<Option<((usize, u64), Instant)>>,
    /// This worker's poller (also published through `context`).
    poller: Arc<Poller>,
    shutdown_seen: Cell<bool>,
    rng: Cell<u32>,
    last_peek: Cell<Instant>,
}

impl Local {
    /// This thread's worker, if it is one.
    pub(crate) fn current() -> Option<&'static Local> {
        let ptr = context::worker_ptr() as *const Local;
        // SAFETY: the worker pointer is set by `run` to its own `Local` for
        // exactly as long as that frame lives, and cleared before it returns;
        // only this thread reads it. The 'static lifetime is not exposed
        // beyond crate code that runs inside that frame (fibers and the loop).
        unsafe { ptr.as_ref() }
    }

    /// Pushes a runnable started fiber onto this worker's run queue.
    pub(crate) fn push_local(&self, fiber: FiberRef) {
        self.run_queue.borrow_mut().push_back(fiber);
    }

    fn next_rand(&self) -> u32 {
        // xorshift32: cheap victim selection.
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng.set(x);
        x
    }

    fn worker(&self) -> &super::WorkerShared {
        &self.shared.workers[self.index]
    }

    /// Steps 1–4 of the search order.
    fn next_local(&self) -> Option<FiberRef> {
        let tick = self.tick.get().wrapping_add(1);
        self.tick.set(tick);
        {
            let mut timers = self.timers.borrow_mut();
            if !timers.is_empty() {
                timers.fire(Instant::now());
            }
        }
        if tick % FAIRNESS_TICKS == 0 {
            self.peek_reactor();
            if let Some(f) = self.steal_injector() {
                return Some(f);
            }
        }
        // Wakes from other threads join the FIFO run queue as soon as they
        // arrive, so a worker whose local fibers keep each other busy still
        // serves them in turn.
        if !self.worker().inbox.is_empty() {
            self.drain_inbox();
        }
        // Fresh fibers (new connection handlers, say) get every other turn
        // when both kinds are waiting, so neither can starve the other.
        if tick % 2 == 0 {
            if let Some(f) = self.fresh.pop() {
                return Some(f);
            }
        }
        if let Some(f) = self.run_queue.borrow_mut().pop_front() {
            return Some(f);
        }
        if let Some(f) = self.fresh.pop() {
            return Some(f);
        }
        self.steal_injector()
    }

    /// A busy worker looks at its own poller without blocking (nothing else
    /// polls it while it is busy), but at most every `PEEK_INTERVAL`: an
    /// `epoll_wait` costs about a microsecond, too much to pay every 61
    /// switches of fibers that only yield.
    fn peek_reactor(&self) {
        let now = Instant::now();
        if now.duration_since(self.last_peek.get()) >= PEEK_INTERVAL {
            self.last_peek.set(now);
            self.poller.poll(Some(Duration::ZERO), || {});
        }
    }

    /// Moves the inbox's fibers (up to a batch) to the back of the run queue.
    fn drain_inbox(&self) {
        let inbox = &self.worker().inbox;
        let mut queue = self.run_queue.borrow_mut();
        for _ in 0..256 {
            match inbox.steal() {
                Steal::Success(f) => queue.push_back(f),
                Steal::Empty => return,
                Steal::Retry => continue,
            }
        }
    }

    /// The first fiber of the inbox, the rest queued behind it.
    fn take_inbox(&self) -> Option<FiberRef> {
        self.drain_inbox();
        self.run_queue.borrow_mut().pop_front()
    }

    fn steal_injector(&self) -> Option<FiberRef> {
        loop {
            match self.shared.injector.steal_batch_and_pop(&self.fresh) {
                Steal::Success(f) => return Some(f),
                Steal::Empty => return None,
                Steal::Retry => continue,
            }
        }
    }

    /// Step 5: steal fresh fibers from siblings.
    fn search(&self) -> Option<FiberRef> {
        self.shared.idle.start_search(&self.searching);
        let n = self.shared.workers.len();
        // The rounds spin 1/7, 2/7 and 4/7 of the budget (none after the
        // last): early rounds look again soon, later ones wait longer.
        let budget = self.spin.get();
        for round in 0..SEARCH_ROUNDS {
            let start = self.next_rand() as usize % n.max(1);
            for k in 0..n {
                let victim = (start + k) % n;
                if victim == self.index {
                    continue;
                }
                if let Some(f) = self.steal_from(victim) {
                    self.spin.remote_work();
                    return Some(f);
                }
            }
            if let Some(f) = self.steal_injector().or_else(|| self.take_inbox()) {
                self.spin.remote_work();
                return Some(f);
            }
            if round + 1 < SEARCH_ROUNDS {
                let spin = budget * (1 << round) / 7;
                if self.spin(spin) {
                    if let Some(f) = self.take_inbox() {
                        self.spin.remote_work();
                        return Some(f);
                    }
                }
                // A long spin also looks at its own sockets (rate-limited):
                // an event for one of its fibers must not wait out the spin.
                if spin >= SPIN_PEEK {
                    self.peek_reactor();
                    if let Some(f) = self.run_queue.borrow_mut().pop_front() {
                        return Some(f);
                    }
                }
            }
        }
        None
    }

    /// Steals half of worker `victim`'s fresh fibers (at least one).
    ///
    /// A *lone* fresh fiber of a worker that is running a fiber is left
    /// alone while that worker runs the same fiber for `LONE_GRACE`: it is most
    /// likely its spawner's next job (spawn, then join or `recv`: the
    /// spawner parks within a microsecond and its worker runs it). Taken at
    /// once, it would start on another worker and stay there, and every
    /// message between it and its spawner would cross threads. Go leaves a
    /// P's `runnext` alone for 3 µs for the same reason. A spawner that does
    /// not park loses it after the grace; one spawned from the worker's own
    /// stack (`net::serve`'s accept: no fiber running) is taken at once.
    fn steal_from(&self, victim: usize) -> Option<FiberRef> {
        let worker = &self.shared.workers[victim];
        // Judge what is there now, and steal only that: a fiber pushed
        // after an empty look must not be taken without its grace.
        let fresh = worker.stealer.len();
        if fresh == 0 {
            return None;
        }
        if fresh == 1 && worker.running.load(Ordering::Relaxed) != 0 {
            // The grace runs while the sibling keeps running one fiber: a
            // switch there (its spawner parked) starts it afresh.
            let seen = (victim, worker.switches.load(Ordering::Relaxed));
            let now = Instant::now();
            match self.lone_since.get() {
                Some((was, since)) if was == seen => {
                    if now.duration_since(since) < LONE_GRACE {
                        return None;
                    }
                }
                _ => {
                    self.lone_since.set(Some((seen, now)));
                    return None;
                }
            }
        }
        loop {
            match worker.stealer.steal_batch_and_pop(&self.fresh) {
                Steal::Success(f) => {
                    self.lone_since.set(None);
                    return Some(f);
                }
                Steal::Empty => return None,
                Steal::Retry => continue,
            }
        }
    }

    /// Spins for about `time`, looking at the inbox every 8 pauses; true as
    /// soon as something arrived there. A reply from a fiber on another
    /// worker is picked up within ~8 pauses (100–300 ns: a pause is ~12 ns
    /// on recent Intel VMs, ~30 on AMD, ~40 on some Intel cores), not at the
    /// end of the spin. Timed by the clock (read every 64 pauses), not by a
    /// pause count, since the pause's length varies 3× between CPUs.
    fn spin(&self, time: Duration) -> bool {
        let inbox = &self.worker().inbox;
        let start = Instant::now();
        loop {
            for _ in 0..8 {
                for _ in 0..8 {
                    std::hint::spin_loop();
                }
                if !inbox.is_empty() {
                    return true;
                }
            }
            if start.elapsed() >= time {
                return false;
            }
        }
    }

    /// A searcher that found work stops searching; if it was the last
    /// searcher, it wakes another so remaining work keeps being picked up.
    fn stop_searching(&self) {
        if self.searching.get() {
            let shared = &self.shared;
            shared
                .idle
                .found_work(&self.searching, |i| shared.wake_worker(i));
        }
    }

    /// Is there anything this worker could do right now?
    fn has_work(&self) -> bool {
        let shared = &self.shared;
        !self.run_queue.borrow().is_empty()
            || !self.worker().inbox.is_empty()
            || !self.fresh.is_empty()
            || !shared.injector.is_empty()
            || shared.workers.iter().any(|w| !w.stealer.is_empty())
            || (shared.is_shutting_down()
                && (!self.shutdown_seen.get() || shared.alive() == 0 || shared.is_closed()))
    }

    /// Step 6: sleep in this worker's poller until there may be work.
    fn idle(&self) {
        let idle = &self.shared.idle;
        idle.give_up(&self.searching);
        // The stack cache's trim (stack/trim.rs) runs here, on the idle path
        // only, and may move the wake-up earlier.
        let deadline = self.shared.pool.trim(
            &mut self.stacks.borrow_mut(),
            Instant::now(),
            self.worker().switches.load(Ordering::Relaxed),
            self.timers.borrow_mut().next_deadline(),
        );
        let now = Instant::now();
        if deadline.is_some_and(|d| d <= now) {
            return;
        }
        let timeout = deadline.map(|d| d - now);
        idle.prepare_sleep(self.index);
        // The re-check of the handshake (idle.rs): work pushed before we
        // published SLEEPING is seen here; work pushed after it claims us.
        if self.has_work() {
            idle.woke(self.index, &self.searching);
            if !self.worker().inbox.is_empty() {
                self.spin.remote_work();
            }
            return;
        }
        let mut woken = Woken::ByItself;
        self.poller.poll(timeout, || {
            woken = idle.woke(self.index, &self.searching);
        });
        // Judged by where the work came from, not only by who ended the
        // sleep: a wake's eventfd event can outlive the sleep it was meant
        // for (the worker found the work in its re-check) and end the next
        // one early, "by itself", with a fiber from another worker waiting.
        if woken == Woken::ByItself && !self.worker().inbox.is_empty() {
            woken = Woken::ByOther;
        }
        self.spin.after_sleep(woken, now.elapsed());
    }

    /// Resumes `fiber` and handles why it stopped.
    fn run_fiber(&self, fiber: FiberRef) {
        if fiber.registry_slot() == usize::MAX {
            self.first_run(&fiber);
        }
        let worker = self.worker();
        worker.running.store(fiber.id().as_u64(), Ordering::Relaxed);
        // Single writer (this thread): a plain store, no locked RMW.
        let switches = worker.switches.load(Ordering::Relaxed);
        worker
            .switches
            .store(switches.wrapping_add(1), Ordering::Relaxed);
        context::set_current_fiber(Arc::as_ptr(&fiber));
        // SAFETY: the header (and the name its overflow info points to) lives
        // at least until the clear below: we hold a strong reference.
        unsafe { stack::set_current_fiber(fiber.overflow_info()) };
        // SAFETY: this worker popped the fiber from a queue, so it is the
        // fiber's only runner; a started fiber is only ever queued to its
        // home worker, which is this thread (`first_run` set it).
        let outcome = unsafe { fiber.resume() };
        stack::clear_current_fiber();
        context::set_current_fiber(std::ptr::null());
        worker.running.store(0, Ordering::Relaxed);
        match outcome {
            Some(Suspend::Yield) => self.push_local(fiber),
            Some(Suspend::Park) => {
                if !fiber.park_state().commit() {
                    self.push_local(fiber);
                }
            }
            None => self.finish(fiber),
        }
    }

    fn first_run(&self, fiber: &FiberRef) {
        if !fiber.started() {
            fiber.set_home(self.index);
        }
        let pool = &self.shared.pool;
        let mut cache = self.stacks.borrow_mut();
        // SAFETY: this worker popped the fiber from a queue and is about to
        // run it for the first time; nobody else touches it meanwhile.
        unsafe { fiber.start(|reserved| pool.bind(reserved, &mut cache)) };
        drop(cache);
        if self.shared.is_shutting_down() {
            // Spawned (or still queued) during shutdown: it never runs its
            // closure; its body just records `Cancelled`.
            fiber.request_cancel_quiet();
        }
        lock(&self.worker().registry).insert(fiber);
    }

    fn finish(&self, fiber: FiberRef) {
        // Its timer entry may outlive its last wait (time.rs): let it go.
        self.timers.borrow_mut().discard(&fiber);
        // SAFETY: the fiber finished on this worker, its only runner.
        if let Some(stack) = unsafe { fiber.take_stack() } {
            self.shared
                .pool
                .free(stack, Some(&mut self.stacks.borrow_mut()));
        }
        lock(&self.worker().registry).remove(&fiber);
    }

    /// A fiber of this worker (`waiting`, the current one) blocks the thread
    /// in place while it unwinds (park.rs, "Unwinding"): run one runnable
    /// fiber that is cancelled, nested on the current stack. A cancelled
    /// fiber unwinds at its next park point anyway, so the thread's panic
    /// count it sees does not change what it does, and it may release what
    /// `waiting` waits for. Shutdown and due timers are looked at first,
    /// since the worker loop cannot while it is blocked. `false`: none.
    pub(crate) fn run_cancelled_nested(&self, waiting: &crate::fiber::Header) -> bool {
        if !self.shutdown_seen.get() && self.shared.is_shutting_down() {
            self.start_shutdown();
        }
        {
            let mut timers = self.timers.borrow_mut();
            if !timers.is_empty() {
                timers.fire(Instant::now());
            }
        }
        self.drain_inbox();
        let next = {
            let mut queue = self.run_queue.borrow_mut();
            let found = queue
                .iter()
                .position(|f| f.is_cancelled() && f.registry_slot() != usize::MAX);
            found.and_then(|i| queue.remove(i))
        };
        let Some(fiber) = next else {
            return false;
        };
        fiber.set_nested(true);
        let nested = fiber.clone();
        self.run_fiber(fiber);
        nested.set_nested(false);
        // `run_fiber` cleared the thread's "current fiber": restore ours.
        context::set_current_fiber(waiting);
        // SAFETY: `waiting` is the fiber running on this thread (its frame
        // called us), so its header outlives this resume of it.
        unsafe { stack::set_current_fiber(waiting.overflow_info()) };
        self.worker()
            .running
            .store(waiting.id().as_u64(), Ordering::Relaxed);
        true
    }

    /// First sight of shutdown: cancel every fiber this worker owns.
    fn start_shutdown(&self) {
        self.shutdown_seen.set(true);
        let fibers: Vec<FiberRef> = lock(&self.worker().registry).fibers().cloned().collect();
        for fiber in fibers {
            fiber.request_cancel();
        }
    }
}

/// The body of a worker thread.
pub(crate) fn run(shared: Arc<Shared>, index: usize, fresh: Deque<FiberRef>) {
    stack::ensure_altstack();
    super::monitor::register_worker_thread(&shared, index);
    let local = Local {
        index,
        poller: shared.reactor.poller(index).clone(),
        shared,
        run_queue: RefCell::new(RunQueue::with_capacity(256)),
        fresh,
        timers: RefCell::new(Timers::default()),
        stacks: RefCell::new(StackCache::new()),
        tick: Cell::new(0),
        searching: Cell::new(false),
        spin: SpinBudget::default(),
        lone_since: Cell::new(None),
        shutdown_seen: Cell::new(false),
        rng: Cell::new(0x9e37_79b9 ^ (index as u32).wrapping_mul(0x85eb_ca6b) | 1),
        last_peek: Cell::new(Instant::now()),
    };
    context::set_worker_ptr(&local as *const Local as *const c_void);
    context::set_poller_ptr(Arc::as_ptr(&local.poller).cast());
    loop {
        // Checked every tick, not only when idle: fibers that keep yielding
        // would otherwise keep shutdown from ever starting.
        if !local.shutdown_seen.get() && local.shared.is_shutting_down() {
            local.start_shutdown();
        }
        if let Some(fiber) = local.next_local() {
            // Woken as a searcher but found work locally: hand the searcher
            // role on, or spawns would see "someone is searching" and wake
            // nobody while this worker is busy.
            local.stop_searching();
            local.run_fiber(fiber);
            continue;
        }
        if local.shutdown_seen.get() && local.shared.try_close() {
            break;
        }
        if let Some(fiber) = local.search() {
            local.stop_searching();
            local.run_fiber(fiber);
            continue;
        }
        local.idle();
    }
    context::set_worker_ptr(std::ptr::null());
    context::set_poller_ptr(std::ptr::null());
    let Local {
        shared,
        stacks,
        timers,
        ..
    } = local;
    drop(timers);
    stacks.borrow_mut().drain_into(&shared.pool);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::fiber::header::test_support;
    use crate::scheduler::Config;
    use crate::stack::{StackGuard, DEFAULT_STACK_SIZE};

    /// Worker 0 of a runtime of `workers` workers whose threads are never
    /// started (the test calls the search steps itself), and the fresh
    /// deques of the others.
    fn worker0(workers: usize) -> (Local, Vec<Deque<FiberRef>>) {
        let (shared, mut deques) = Shared::new(Config {
            workers,
            stack_size: DEFAULT_STACK_SIZE,
            stack_guard: StackGuard::Auto,
            stall_threshold: Duration::from_secs(1),
            thread_name: "search-order-test".into(),
        })
        .expect("runtime state");
        let local = Local {
            index: 0,
            poller: shared.reactor.poller(0).clone(),
            shared,
            run_queue: RefCell::new(RunQueue::new()),
            fresh: deques.remove(0),
            timers: RefCell::new(Timers::default()),
            stacks: RefCell::new(StackCache::new()),
            tick: Cell::new(0),
            searching: Cell::new(false),
            spin: SpinBudget::default(),
            lone_since: Cell::new(None),
            shutdown_seen: Cell::new(false),
            rng: Cell::new(1),
            last_peek: Cell::new(Instant::now()),
        };
        (local, deques)
    }

    fn local() -> Local {
        worker0(1).0
    }

    fn is(got: &Option<FiberRef>, want: &FiberRef) -> bool {
        got.as_ref().is_some_and(|g| Arc::ptr_eq(g, want))
    }

    #[test]
    fn fresh_and_runnable_fibers_take_turns() {
        let w = local();
        let (a, b) = (test_support::fiber(), test_support::fiber());
        let (x, y) = (test_support::fiber(), test_support::fiber());
        w.push_local(a.clone());
        w.push_local(b.clone());
        w.fresh.push(x.clone());
        w.fresh.push(y.clone());
        // Odd ticks: the run queue (FIFO); even ticks: the fresh deque
        // (LIFO, the newest spawn first).
        assert!(is(&w.next_local(), &a));
        assert!(is(&w.next_local(), &y));
        assert!(is(&w.next_local(), &b));
        assert!(is(&w.next_local(), &x));
        assert!(w.next_local().is_none());
    }

    #[test]
    fn inbox_wakes_queue_behind_the_local_run_queue() {
        let w = local();
        let (a, woken) = (test_support::fiber(), test_support::fiber());
        w.push_local(a.clone());
        w.worker().inbox.push(woken.clone());
        assert!(is(&w.next_local(), &a));
        assert!(is(&w.next_local(), &woken));
        assert!(w.next_local().is_none());
    }

    #[test]
    fn the_injector_comes_first_every_61st_tick_and_last_otherwise() {
        let w = local();
        let (a, b, outside) = (
            test_support::fiber(),
            test_support::fiber(),
            test_support::fiber(),
        );
        w.push_local(a.clone());
        w.push_local(b.clone());
        w.shared.injector.push(outside.clone());
        // An ordinary tick: local work first.
        assert!(is(&w.next_local(), &a));
        // The 61st tick: the injector before the run queue.
        w.tick.set(FAIRNESS_TICKS - 1);
        assert!(is(&w.next_local(), &outside));
        assert!(is(&w.next_local(), &b));
        // With nothing local left, the injector is the last local step.
        let late = test_support::fiber();
        w.shared.injector.push(late.clone());
        assert!(is(&w.next_local(), &late));
        assert!(w.next_local().is_none());
    }

    #[test]
    fn a_lone_fresh_fiber_of_a_busy_sibling_is_left_to_it_for_a_grace() {
        let (w, mut others) = worker0(2);
        let sibling_fresh = others.remove(0);
        let spawned = test_support::fiber();
        sibling_fresh.push(spawned.clone());
        // The sibling runs a fiber (its spawner, say): its lone fresh fiber
        // is left to it until the grace has passed since first seen.
        w.shared.workers[1].running.store(7, Ordering::Relaxed);
        assert!(w.steal_from(1).is_none());
        assert!(w.lone_since.get().is_some());
        // The sibling switched fibers meanwhile: the grace starts afresh.
        let (seen, _) = w.lone_since.get().unwrap();
        w.shared.workers[1].switches.store(1, Ordering::Relaxed);
        assert!(w.steal_from(1).is_none());
        let (now_seen, _) = w.lone_since.get().unwrap();
        assert_ne!(seen, now_seen);
        // Still the same fiber running there after the grace: stolen.
        w.lone_since
            .set(Some((now_seen, Instant::now() - LONE_GRACE * 2)));
        assert!(is(&w.steal_from(1), &spawned));
        assert!(w.lone_since.get().is_none(), "a steal resets the grace");
        // Two fresh fibers, or a sibling that runs none: stolen at once.
        let (a, b) = (test_support::fiber(), test_support::fiber());
        sibling_fresh.push(a.clone());
        sibling_fresh.push(b.clone());
        assert!(is(&w.steal_from(1), &a));
        w.shared.workers[1].running.store(0, Ordering::Relaxed);
        assert!(is(&w.steal_from(1), &b));
    }

    #[test]
    fn a_searcher_steals_fresh_fibers_from_a_sibling() {
        let (w, mut others) = worker0(2);
        let sibling_fresh = others.remove(0);
        let spawned = test_support::fiber();
        sibling_fresh.push(spawned.clone());
        assert!(w.next_local().is_none(), "nothing local");
        assert!(is(&w.search(), &spawned));
        w.stop_searching();
        assert!(sibling_fresh.is_empty());
    }
}
