//! The stall monitor: a thread that samples every worker every few
//! milliseconds. A worker whose `switches` counter has not moved while it runs
//! the same fiber for longer than the threshold is stuck behind that fiber (a
//! CPU loop, a blocking syscall, a std lock held across a park). The monitor
//! reports it once per stall and wakes an idle sibling so the stuck worker's
//! fresh (stealable) fibers and the injector keep moving. The stuck worker's
//! started fibers wait, as they would behind a blocked thread.
//!
//! The report (RELIABILITY rows 8, 14, 24) names the fiber (name and id), the
//! worker, how long it has held it, what the worker thread is doing if the
//! kernel says (`/proc/self/task/<tid>/syscall`: on the CPU, or blocked in a
//! futex — a std lock, condvar or channel —, a read, a sleep...), and the fix
//! in plain words. It goes to the `log` crate as a warning; when no logger is
//! enabled (`log::max_level()` is `Off`, the default without one) it is
//! written to stderr instead, so a newcomer's silent hang is not silent. The
//! stderr copies are rate-limited (`STDERR_BURST` per `STDERR_WINDOW`; the
//! next one printed says how many were left out). `Stats::stalls` counts
//! every stall.
//!
//! It also wakes an idle sibling whenever a worker has fresh (stealable)
//! fibers queued and made no progress over a whole sample: spawns from a
//! fiber do not wake anyone while they are their worker's only fresh fiber,
//! and this is the backstop for a spawner that then runs without parking.
//!
//! It reads only atomics and the workers' registries; it never runs fibers.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::Shared;
use crate::fiber::lock;

const SAMPLE: Duration = Duration::from_millis(5);
/// At most this many stall reports go to stderr per `STDERR_WINDOW`.
const STDERR_BURST: u32 = 4;
/// The stderr rate-limit window.
const STDERR_WINDOW: Duration = Duration::from_secs(60);

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
    let mut limiter = RateLimit {
        window_start: now,
        printed: 0,
        suppressed: 0,
    };
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
                report(shared, index, running, stuck, &mut limiter);
            }
        }
    }
}

/// Worker side, at thread start: records the worker's kernel thread id, so
/// the monitor can ask the kernel what a stuck worker is doing.
pub(crate) fn register_worker_thread(shared: &Shared, index: usize) {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    shared.workers[index].tid.store(tid, Ordering::Relaxed);
}

/// Limits how many stall reports reach stderr.
struct RateLimit {
    window_start: Instant,
    printed: u32,
    suppressed: u64,
}

impl RateLimit {
    /// May one more report be printed now? `Some(n)`: yes, and `n` earlier
    /// ones were left out.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        if now.duration_since(self.window_start) >= STDERR_WINDOW {
            self.window_start = now;
            self.printed = 0;
        }
        if self.printed >= STDERR_BURST {
            self.suppressed += 1;
            return None;
        }
        self.printed += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

fn report(shared: &Shared, index: usize, fiber_id: u64, stuck: Duration, limiter: &mut RateLimit) {
    shared.counters.stalls.fetch_add(1, Ordering::Relaxed);
    let name = lock(&shared.workers[index].registry)
        .fibers()
        .find(|f| f.id().as_u64() == fiber_id)
        .map(|f| f.name().unwrap_or("<unnamed>").to_owned())
        .unwrap_or_else(|| "<unknown>".to_owned());
    let doing = Doing::of_thread(shared.workers[index].tid.load(Ordering::Relaxed));
    let message = format!(
        "threadlet: fiber '{name}' (id {fiber_id}) has held worker {index} for {} ms without \
         parking or yielding, so the other fibers of that worker cannot run. {} {} The rules: \
         never hold or wait on a std::sync lock or channel across a blocking call (use \
         threadlet::sync); run blocking calls threadlet does not park in \
         `threadlet::unblock(|| ...)`; call `threadlet::yield_now()` in long CPU loops.",
        stuck.as_millis(),
        doing.what(),
        doing.fix(),
    );
    if log::max_level() != log::LevelFilter::Off {
        log::warn!("{message}");
    } else if let Some(suppressed) = limiter.admit(Instant::now()) {
        let mut err = io::stderr().lock();
        if suppressed > 0 {
            let _ = writeln!(err, "threadlet: ({suppressed} more stall reports left out)");
        }
        let _ = writeln!(err, "{message}");
    }
    // Let idle siblings take the stuck worker's stealable work.
    shared.notify_any();
}

/// What a stuck worker thread is doing, as far as the kernel says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Doing {
    /// Running user code on the CPU.
    Cpu,
    /// Blocked in a futex: a std lock, condvar or channel (or a C library's).
    Futex,
    /// Blocked reading or receiving.
    Read,
    /// Blocked writing or sending.
    Write,
    /// Sleeping (`std::thread::sleep`, `nanosleep`).
    Sleep,
    /// Blocked in `poll`/`select`/`epoll_wait` of its own.
    Poll,
    /// Blocked in `connect`/`accept`.
    Connect,
    /// In another system call (its number).
    Syscall(libc::c_long),
    /// Unknown (no thread id, or `/proc` unreadable).
    Unknown,
}

impl Doing {
    fn of_thread(tid: i32) -> Doing {
        if tid <= 0 {
            return Doing::Unknown;
        }
        let path = format!("/proc/self/task/{tid}/syscall");
        match std::fs::read_to_string(path) {
            Ok(text) => Doing::parse(&text),
            Err(_) => Doing::Unknown,
        }
    }

    /// Parses `/proc/<pid>/task/<tid>/syscall`: "running", or the number
    /// of the system call the thread is blocked in, then its arguments.
    fn parse(text: &str) -> Doing {
        let first = text.split_whitespace().next().unwrap_or("");
        if first == "running" {
            return Doing::Cpu;
        }
        let Ok(nr) = first.parse::<libc::c_long>() else {
            return Doing::Unknown;
        };
        if nr < 0 {
            // Blocked, but not in a system call (a page fault, say).
            return Doing::Unknown;
        }
        let is = |list: &[libc::c_long]| list.contains(&nr);
        if is(&[libc::SYS_futex]) {
            Doing::Futex
        } else if is(&[
            libc::SYS_read,
            libc::SYS_readv,
            libc::SYS_pread64,
            libc::SYS_recvfrom,
            libc::SYS_recvmsg,
        ]) {
            Doing::Read
        } else if is(&[
            libc::SYS_write,
            libc::SYS_writev,
            libc::SYS_pwrite64,
            libc::SYS_sendto,
            libc::SYS_sendmsg,
        ]) {
            Doing::Write
        } else if is(&[libc::SYS_nanosleep, libc::SYS_clock_nanosleep]) {
            Doing::Sleep
        } else if is(&[libc::SYS_ppoll, libc::SYS_pselect6, libc::SYS_epoll_pwait])
            || is_legacy_poll(nr)
        {
            Doing::Poll
        } else if is(&[libc::SYS_connect, libc::SYS_accept, libc::SYS_accept4]) {
            Doing::Connect
        } else {
            Doing::Syscall(nr)
        }
    }

    /// What the worker thread is doing, in words.
    fn what(self) -> String {
        match self {
            Doing::Cpu => "Its thread is running on the CPU: a long loop or computation.".into(),
            Doing::Futex => "Its thread is blocked in the kernel on a futex: most likely a \
                             std::sync Mutex, RwLock, Condvar or mpsc channel, perhaps held \
                             across a wait by a sibling fiber of the same worker, which then \
                             can never release it (a deadlock)."
                .into(),
            Doing::Read => "Its thread is blocked in a read or receive threadlet does not own \
                            (a file, a pipe, a std socket)."
                .into(),
            Doing::Write => {
                "Its thread is blocked in a write or send threadlet does not own.".into()
            }
            Doing::Sleep => "Its thread is asleep: std::thread::sleep (or nanosleep).".into(),
            Doing::Poll => "Its thread is blocked in a poll/select/epoll_wait of its own.".into(),
            Doing::Connect => "Its thread is blocked in a std connect or accept.".into(),
            Doing::Syscall(nr) => format!("Its thread is blocked in system call {nr}."),
            Doing::Unknown => "What its thread is doing is unknown.".into(),
        }
    }

    /// The fix for that case.
    fn fix(self) -> &'static str {
        match self {
            Doing::Cpu => {
                "Fix: call `threadlet::yield_now()` every so often in the loop, or run \
                           it in `threadlet::unblock`."
            }
            Doing::Futex => {
                "Fix: replace that std::sync type with its threadlet::sync twin \
                             (Mutex, RwLock, Condvar, mpsc), which parks only the fiber."
            }
            Doing::Read | Doing::Write | Doing::Connect => {
                "Fix: use threadlet::net / threadlet::fs / threadlet::io::Async, or wrap the \
                 call in `threadlet::unblock`."
            }
            Doing::Sleep => "Fix: use threadlet::time::sleep instead of std::thread::sleep.",
            Doing::Poll | Doing::Syscall(_) | Doing::Unknown => {
                "Fix: wrap the blocking call in `threadlet::unblock`."
            }
        }
    }
}

/// `poll`, `select` and `epoll_wait`, which only some architectures have.
#[cfg(target_arch = "x86_64")]
fn is_legacy_poll(nr: libc::c_long) -> bool {
    [libc::SYS_poll, libc::SYS_select, libc::SYS_epoll_wait].contains(&nr)
}

/// `poll`, `select` and `epoll_wait`, which only some architectures have.
#[cfg(not(target_arch = "x86_64"))]
fn is_legacy_poll(_nr: libc::c_long) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_syscall_file() {
        assert_eq!(Doing::parse("running\n"), Doing::Cpu);
        let futex = format!(
            "{} 0x7f00 0x80 0x2 0x0 0x0 0x0 0x7ffd 0x7f00\n",
            libc::SYS_futex
        );
        assert_eq!(Doing::parse(&futex), Doing::Futex);
        let sleep = format!("{} 0x0 0x0\n", libc::SYS_clock_nanosleep);
        assert_eq!(Doing::parse(&sleep), Doing::Sleep);
        assert_eq!(Doing::parse("-1 0x7ffd 0x7f00\n"), Doing::Unknown);
        assert_eq!(Doing::parse(""), Doing::Unknown);
        assert_eq!(Doing::parse("9999 0x0"), Doing::Syscall(9999));
    }

    #[test]
    fn stderr_reports_are_rate_limited() {
        let start = Instant::now();
        let mut limiter = RateLimit {
            window_start: start,
            printed: 0,
            suppressed: 0,
        };
        for _ in 0..STDERR_BURST {
            assert_eq!(limiter.admit(start), Some(0));
        }
        assert_eq!(limiter.admit(start), None);
        assert_eq!(limiter.admit(start), None);
        assert_eq!(limiter.admit(start + STDERR_WINDOW), Some(2));
    }
}
