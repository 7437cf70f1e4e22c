//! Giving memory back after a burst (RELIABILITY rows 20 and 26).
//!
//! A fiber's stack pages stay resident when the stack goes back to a cache:
//! that is what makes the next spawn cheap. After a burst (10k connections
//! that came and went) that would keep the burst's whole high-water mark
//! resident for good. So an idle worker trims, from its idle path only —
//! never on spawn or finish — in rounds:
//!
//! 1. its own cache: every stack but the `KEEP_WARM` warmest (the back of
//!    the cache) gives back all its pages (`MADV_DONTNEED`); the kept ones
//!    give back what lies below their top `WARM_BYTES`;
//! 2. the shared free list, oldest first, in batches of `TRIM_BATCH` taken
//!    out under the lock and released outside it: each stack gives back all
//!    its pages and moves to the pool's `cold` list (still reusable: `alloc`
//!    takes cold stacks before it maps a new slab);
//! 3. once the free list is empty: slabs all of whose stacks sit on the cold
//!    list are unmapped (the `Arc` count of a slab is exactly its number of
//!    live stacks, so "count on the cold list == strong count", checked under
//!    the lock, means no stack of it is cached or in use anywhere).
//!
//! When: the worker passes its switch counter (`activity`). The first idle
//! call that sees it move arms a trim `TRIM_INTERVAL` later; a due trim runs
//! one round and, while work is left, re-arms `TRIM_CONTINUE` later; with
//! nothing left it disarms until the next activity. The worker's idle sleep
//! ends no later than the armed time (see [`earliest`]). So a runtime that
//! stays idle does not wake up, a busy worker trims at most once per
//! interval (re-faulting at most a few pages per cached stack per second),
//! and a few seconds after a burst its memory is back.
//!
//! Who touches what: `TrimState` and the cache belong to their worker (no
//! lock); `free`, `cold` and `cold_unchecked` are under the pool's lock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{page_round, FiberStack, Slab, StackCache, StackPool, WARM_BYTES};

/// Delay between activity and the trim it arms.
const TRIM_INTERVAL: Duration = Duration::from_secs(1);
/// Pause between two rounds while there is more to give back.
const TRIM_CONTINUE: Duration = Duration::from_millis(10);
/// Warmest stacks a worker's cache keeps resident (their top `WARM_BYTES`).
const KEEP_WARM: usize = 16;
/// Stacks of the shared free list released per round.
const TRIM_BATCH: usize = 512;

/// A worker's trim schedule (module docs).
#[derive(Debug, Default)]
pub(crate) struct TrimState {
    /// The activity counter at the last call.
    seen: u64,
    /// When the armed trim is due; `None`: disarmed.
    due: Option<Instant>,
}

/// The earlier of two optional deadlines (`None` is "never").
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

impl StackPool {
    /// A worker's idle path: trims `cache` and the shared list when a trim
    /// is due at `now` (module docs). `activity` is a counter that moves
    /// whenever the worker runs fibers; `deadline` is when the worker meant
    /// to wake up. Returns the earlier of `deadline` and the next armed trim.
    /// Costs two compares when nothing is armed and nothing ran.
    pub(crate) fn trim(
        &self,
        cache: &mut StackCache,
        now: Instant,
        activity: u64,
        deadline: Option<Instant>,
    ) -> Option<Instant> {
        let state = &mut cache.trim;
        if activity == state.seen && state.due.is_none() {
            return deadline;
        }
        if activity != state.seen {
            state.seen = activity;
            state.due.get_or_insert(now + TRIM_INTERVAL);
        }
        match state.due {
            Some(due) if due > now => return earliest(deadline, Some(due)),
            _ => {}
        }
        trim_cache(cache);
        let more = self.trim_shared();
        cache.trim.due = more.then(|| now + TRIM_CONTINUE);
        earliest(deadline, cache.trim.due)
    }

    /// One round on the shared list; `true` if there is more to do.
    fn trim_shared(&self) -> bool {
        let mut batch: Vec<FiberStack> = {
            let mut shared = self.lock();
            let n = shared.free.len().min(TRIM_BATCH);
            let batch = shared.free.drain(..n).collect();
            self.shared_len.store(shared.free.len(), super::Relaxed);
            batch
        };
        if batch.is_empty() {
            self.unmap_free_slabs();
            return false;
        }
        // Outside the lock: a madvise per stack that a fiber touched.
        batch.iter_mut().for_each(|stack| stack.release_pages(0));
        let mut shared = self.lock();
        shared.cold.append(&mut batch);
        shared.cold_unchecked = true;
        true
    }

    /// Unmaps the slabs whose stacks are all on the cold list.
    fn unmap_free_slabs(&self) {
        let gone: Vec<FiberStack> = {
            let mut shared = self.lock();
            if !std::mem::take(&mut shared.cold_unchecked) {
                return;
            }
            let mut on_list: HashMap<*const Slab, usize> = HashMap::new();
            for stack in &shared.cold {
                if let Some(slab) = &stack.slab {
                    *on_list.entry(std::sync::Arc::as_ptr(slab)).or_default() += 1;
                }
            }
            // Every stack holds one count of its slab; stacks can leave the
            // cold list only under this lock, so the counts are stable here.
            let wholly_free = |stack: &FiberStack| {
                stack.slab.as_ref().is_some_and(|slab| {
                    on_list.get(&std::sync::Arc::as_ptr(slab)).copied()
                        == Some(std::sync::Arc::strong_count(slab))
                })
            };
            let (gone, kept) = std::mem::take(&mut shared.cold)
                .into_iter()
                .partition(|s| wholly_free(s));
            shared.cold = kept;
            gone
        };
        // The last stack of each slab unmaps it, outside the lock.
        drop(gone);
    }
}

/// Step 1 of a round: the worker's own cache.
fn trim_cache(cache: &mut StackCache) {
    let keep_from = cache.stacks.len().saturating_sub(KEEP_WARM);
    let warm = page_round(WARM_BYTES);
    for (i, stack) in cache.stacks.iter_mut().enumerate() {
        stack.release_pages(if i < keep_from { 0 } else { warm });
    }
}
