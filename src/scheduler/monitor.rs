//! The stall monitor: a thread that samples every worker every few
//! milliseconds. A worker whose `switches` counter has not moved while it runs
//! the same fiber for longer than the threshold is stuck behind that fiber (a
//! CPU loop, a blocking syscall, a std lock held across a park). The monitor
//! reports it once per stall — a `log::warn!` naming the fiber, the worker and
//! how long it has run, and `Stats::stalls` — and wakes an idle sibling so the
//! stuck worker's fresh (stealable) fibers and the injector keep moving. The
//! stuck worker's started fibers wait, as they would behind a blocked thread.
//!
//! It also wakes an idle sibling whenever a worker has fresh (stealable)
//! fibers queued and made no progress over a whole sample: spawns from a
//! fiber do not wake anyone while they are their worker's only fresh fiber,
//! and this is the backstop for a spawner that then runs without parking.
//!
//! It reads only atomics and the workers' registries; it never runs fibers.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::Shared;
use crate::fiber::lock;

const SAMPLE: Duration = Duration::from_millis(5);

/// Handle to the monitor thread; stopping it joins it.
pub(crate) struct Monitor {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

struct Sample {
    running: u64,
    switches: u64,
    since: Instant,
    reported: bool,
}

impl Monitor {
    pub(crate) fn start(shared: Arc<Shared>) -> io::Result<Monitor> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = thread::Builder::new()
            .name(format!("{}-monitor", shared.config.thread_name))
            .spawn(move || watch(&shared, &stop2))?;
        Ok(Monitor {
            stop,
            thread: Some(thread),
        })
    }

    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop();
    }
}

fn watch(shared: &Shared, stop: &AtomicBool) {
    let now = Instant::now();
    let mut samples: Vec<Sample> = (0..shared.workers.len())
        .map(|_| Sample {
            running: 0,
            switches: 0,
            since: now,
            reported: false,
        })
        .collect();
    while !stop.load(Ordering::Acquire) {
        thread::park_timeout(SAMPLE);
        let now = Instant::now();
        for (index, sample) in samples.iter_mut().enumerate() {
            let w = &shared.workers[index];
            let running = w.running.load(Ordering::Relaxed);
            let switches = w.switches.load(Ordering::Relaxed);
            // Fresh fibers queued behind a worker that made no progress in a
            // whole sample: let an idle sibling steal them.
            if switches == sample.switches && !w.stealer.is_empty() {
                shared.notify_any();
            }
            if running == 0 || running != sample.running || switches != sample.switches {
                *sample = Sample {
                    running,
                    switches,
                    since: now,
                    reported: false,
                };
                continue;
            }
            let stuck = now - sample.since;
            if !sample.reported && stuck >= shared.config.stall_threshold {
                sample.reported = true;
                report(shared, index, running, stuck);
            }
        }
    }
}

fn report(shared: &Shared, index: usize, fiber_id: u64, stuck: Duration) {
    shared.counters.stalls.fetch_add(1, Ordering::Relaxed);
    let name = lock(&shared.workers[index].registry)
        .fibers()
        .find(|f| f.id().as_u64() == fiber_id)
        .map(|f| f.name().unwrap_or("<unnamed>").to_owned())
        .unwrap_or_else(|| "<unknown>".to_owned());
    log::warn!(
        "threadlet: fiber '{name}' (id {fiber_id}) has run on worker {index} for {} ms without \
         blocking or yielding; other fibers of that worker are waiting. Move blocking calls into \
         `threadlet::unblock`, call `threadlet::fiber::yield_now()` in long loops, and do not hold \
         std locks across blocking calls.",
        stuck.as_millis()
    );
    // Let idle siblings take the stuck worker's stealable work.
    shared.notify_any();
}
