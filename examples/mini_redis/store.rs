//! The key space of mini_redis and the commands that act on it.
//!
//! Keys live in [`SHARDS`] shards, each a `Mutex<HashMap>` (the including
//! file chooses the mutex: `threadlet::sync::Mutex` in the example,
//! `std::sync::Mutex` in the tokio and std-thread peers). A command locks
//! one shard at a time, only for the map operation itself, and never does IO
//! while holding it; so commands on one key are atomic, and `MSET`/`MGET`
//! over several shards are not (they are per key).
//!
//! Expiry: an entry carries its deadline. Every read checks it (lazy
//! expiry), and each shard keeps a min-heap of (deadline, key) that
//! [`Store::sweep`] pops, so keys nobody reads again still go away. Heap
//! items whose key was since rewritten are stale and skipped; the heap is
//! rebuilt from the map when stale items outnumber the keys.

use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashMap};
use std::hash::BuildHasher;
use std::ops::Range;
use std::time::{Duration, Instant};

use super::resp;
use super::Mutex;

/// Number of shards (a power of two).
pub(crate) const SHARDS: usize = 64;

struct Entry {
    value: Vec<u8>,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: &mut Option<Instant>) -> bool {
        match self.expires {
            None => true,
            Some(t) => t > *now.get_or_insert_with(Instant::now),
        }
    }
}

#[derive(Default)]
struct Shard {
    map: HashMap<Vec<u8>, Entry>,
    deadlines: BinaryHeap<Reverse<(Instant, Vec<u8>)>>,
}

impl Shard {
    /// The live entry of `key`, removing it if it has expired.
    fn get_live(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let mut now = None;
        if !self.map.get(key)?.live(&mut now) {
            self.map.remove(key);
            return None;
        }
        self.map.get_mut(key)
    }

    fn set_deadline(&mut self, key: &[u8], at: Instant) {
        self.deadlines.push(Reverse((at, key.to_vec())));
        if self.deadlines.len() > 2 * self.map.len() + 1024 {
            self.deadlines = self
                .map
                .iter()
                .filter_map(|(k, e)| e.expires.map(|t| Reverse((t, k.clone()))))
                .collect();
        }
    }
}

/// What the connection does after a command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Go on reading commands.
    Continue,
    /// Close after writing the replies so far (`QUIT`).
    Close,
}

/// The whole key space.
pub(crate) struct Store {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

fn lock(m: &Mutex<Shard>) -> super::MutexGuard<'_, Shard> {
    // A panic while holding a shard cannot leave it half-updated in a way
    // that matters to a cache: use the data anyway.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A deadline `amount` units from now, or `None` if it does not fit.
fn deadline(amount: i64, unit_ms: i64) -> Option<Instant> {
    let ms = amount.checked_mul(unit_ms)?;
    Instant::now().checked_add(Duration::from_millis(u64::try_from(ms).ok()?))
}

const WRONG_INT: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";

impl Store {
    /// An empty store.
    pub(crate) fn new() -> Store {
        Store {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &[u8]) -> &Mutex<Shard> {
        let h = self.hasher.hash_one(key);
        &self.shards[(h as usize) & (SHARDS - 1)]
    }

    /// Removes expired keys whose deadline is before `now`; returns how many.
    pub(crate) fn sweep(&self, now: Instant) -> usize {
        let mut removed = 0;
        for m in self.shards.iter() {
            let mut shard = lock(m);
            while let Some(Reverse((t, _))) = shard.deadlines.peek() {
                if *t > now {
                    break;
                }
                let Reverse((t, key)) = shard.deadlines.pop().expect("peeked");
                if shard.map.get(&key).and_then(|e| e.expires) == Some(t) {
                    shard.map.remove(&key);
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Number of keys, counting expired ones not yet swept (as Redis does).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|m| lock(m).map.len()).sum()
    }

    /// Runs the command whose arguments are `args` (ranges of `buf`) and
    /// appends its reply to `out`.
    pub(crate) fn execute(&self, buf: &[u8], args: &[Range<usize>], out: &mut Vec<u8>) -> Flow {
        let arg = |i: usize| &buf[args[i].clone()];
        let name = arg(0);
        let n = args.len();
        macro_rules! arity {
            ($ok:expr, $cmd:expr) => {
                if !$ok {
                    resp::error(
                        out,
                        &format!("ERR wrong number of arguments for '{}' command", $cmd),
                    );
                    return Flow::Continue;
                }
            };
        }
        let is = |cmd: &str| name.eq_ignore_ascii_case(cmd.as_bytes());
        if is("get") {
            arity!(n == 2, "get");
            let mut shard = lock(self.shard(arg(1)));
            match shard.get_live(arg(1)) {
                Some(e) => resp::bulk(out, &e.value),
                None => resp::null(out),
            }
        } else if is("set") {
            self.set(buf, args, out);
        } else if is("ping") {
            arity!(n <= 2, "ping");
            if n == 2 {
                resp::bulk(out, arg(1));
            } else {
                resp::simple(out, "PONG");
            }
        } else if is("incr") || is("decr") || is("incrby") || is("decrby") {
            let by = is("incrby") || is("decrby");
            arity!(
                n == if by { 3 } else { 2 },
                String::from_utf8_lossy(name).to_lowercase()
            );
            let delta = if by {
                match resp::parse_i64(arg(2)) {
                    Some(d) => d,
                    None => return error(out, WRONG_INT),
                }
            } else {
                1
            };
            let delta = if is("decr") || is("decrby") {
                match delta.checked_neg() {
                    Some(d) => d,
                    None => return error(out, "ERR decrement would overflow"),
                }
            } else {
                delta
            };
            self.incr(arg(1), delta, out);
        } else if is("echo") {
            arity!(n == 2, "echo");
            resp::bulk(out, arg(1));
        } else if is("del") || is("exists") {
            let del = is("del");
            arity!(n >= 2, if del { "del" } else { "exists" });
            let mut count = 0;
            for i in 1..n {
                let mut shard = lock(self.shard(arg(i)));
                if shard.get_live(arg(i)).is_some() {
                    count += 1;
                    if del {
                        shard.map.remove(arg(i));
                    }
                }
            }
            resp::integer(out, count);
        } else if is("expire") || is("pexpire") {
            let ms = is("pexpire");
            arity!(n == 3, if ms { "pexpire" } else { "expire" });
            let Some(amount) = resp::parse_i64(arg(2)) else {
                return error(out, WRONG_INT);
            };
            let mut shard = lock(self.shard(arg(1)));
            if shard.get_live(arg(1)).is_none() {
                resp::integer(out, 0);
                return Flow::Continue;
            }
            if amount <= 0 {
                shard.map.remove(arg(1));
                resp::integer(out, 1);
                return Flow::Continue;
            }
            let Some(at) = deadline(amount, if ms { 1 } else { 1000 }) else {
                return error(out, "ERR invalid expire time in 'expire' command");
            };
            shard.map.get_mut(arg(1)).expect("live").expires = Some(at);
            shard.set_deadline(arg(1), at);
            resp::integer(out, 1);
        } else if is("ttl") || is("pttl") {
            let ms = is("pttl");
            arity!(n == 2, if ms { "pttl" } else { "ttl" });
            let mut shard = lock(self.shard(arg(1)));
            let v = match shard.get_live(arg(1)) {
                None => -2,
                Some(Entry { expires: None, .. }) => -1,
                Some(Entry {
                    expires: Some(t), ..
                }) => {
                    let left = t.saturating_duration_since(Instant::now()).as_millis() as i64;
                    if ms {
                        left
                    } else {
                        (left + 500) / 1000
                    }
                }
            };
            resp::integer(out, v);
        } else if is("mget") {
            arity!(n >= 2, "mget");
            let before = out.len();
            resp::array(out, n - 1);
            for i in 1..n {
                let mut shard = lock(self.shard(arg(i)));
                match shard.get_live(arg(i)) {
                    Some(e) => resp::bulk(out, &e.value),
                    None => resp::null(out),
                }
                if out.len() - before > resp::MAX_REPLY {
                    out.truncate(before);
                    return error(out, "ERR reply too large: MGET fewer keys at a time");
                }
            }
        } else if is("mset") {
            arity!(n >= 3 && n % 2 == 1, "mset");
            for i in (1..n).step_by(2) {
                let entry = Entry {
                    value: arg(i + 1).to_vec(),
                    expires: None,
                };
                lock(self.shard(arg(i))).map.insert(arg(i).to_vec(), entry);
            }
            resp::simple(out, "OK");
        } else if is("dbsize") {
            arity!(n == 1, "dbsize");
            resp::integer(out, self.len() as i64);
        } else if is("flushall") || is("flushdb") {
            for m in self.shards.iter() {
                let mut shard = lock(m);
                shard.map.clear();
                shard.deadlines.clear();
            }
            resp::simple(out, "OK");
        } else if is("command") {
            // redis-cli asks for the command table (`COMMAND DOCS`) to offer
            // hints; an empty table means "no hints".
            if n >= 2 && arg(1).eq_ignore_ascii_case(b"count") {
                resp::integer(out, 0);
            } else {
                resp::array(out, 0);
            }
        } else if is("config") {
            // redis-benchmark reads `save` and `appendonly` to print them.
            if n == 3 && arg(1).eq_ignore_ascii_case(b"get") {
                let answer: &[u8] = if arg(2).eq_ignore_ascii_case(b"appendonly") {
                    b"no"
                } else {
                    b""
                };
                resp::array(out, 2);
                resp::bulk(out, arg(2));
                resp::bulk(out, answer);
            } else {
                resp::array(out, 0);
            }
        } else if is("select") {
            arity!(n == 2, "select");
            if arg(1) == b"0" {
                resp::simple(out, "OK");
            } else {
                resp::error(out, "ERR DB index is out of range");
            }
        } else if is("quit") {
            resp::simple(out, "OK");
            return Flow::Close;
        } else {
            let shown: String = String::from_utf8_lossy(&name[..name.len().min(64)])
                .chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect();
            resp::error(out, &format!("ERR unknown command '{shown}'"));
        }
        Flow::Continue
    }

    fn set(&self, buf: &[u8], args: &[Range<usize>], out: &mut Vec<u8>) {
        let arg = |i: usize| &buf[args[i].clone()];
        if args.len() < 3 {
            return resp::error(out, "ERR wrong number of arguments for 'set' command");
        }
        let (mut expires, mut nx, mut xx, mut keep_ttl) = (None, false, false, false);
        let mut i = 3;
        while i < args.len() {
            let opt = arg(i);
            if opt.eq_ignore_ascii_case(b"nx") && !xx {
                nx = true;
            } else if opt.eq_ignore_ascii_case(b"xx") && !nx {
                xx = true;
            } else if opt.eq_ignore_ascii_case(b"keepttl") && expires.is_none() {
                keep_ttl = true;
            } else if (opt.eq_ignore_ascii_case(b"ex") || opt.eq_ignore_ascii_case(b"px"))
                && expires.is_none()
                && !keep_ttl
                && i + 1 < args.len()
            {
                let unit = if opt.eq_ignore_ascii_case(b"ex") {
                    1000
                } else {
                    1
                };
                i += 1;
                let Some(amount) = resp::parse_i64(arg(i)) else {
                    return resp::error(out, WRONG_INT);
                };
                match (amount > 0).then(|| deadline(amount, unit)).flatten() {
                    Some(at) => expires = Some(at),
                    None => return resp::error(out, "ERR invalid expire time in 'set' command"),
                }
            } else {
                return resp::error(out, SYNTAX);
            }
            i += 1;
        }
        let key = arg(1);
        let mut shard = lock(self.shard(key));
        let old = shard.get_live(key);
        if (nx && old.is_some()) || (xx && old.is_none()) {
            return resp::null(out);
        }
        match old {
            Some(e) => {
                e.value.clear();
                e.value.extend_from_slice(arg(2));
                if !keep_ttl {
                    e.expires = expires;
                }
            }
            None => {
                let entry = Entry {
                    value: arg(2).to_vec(),
                    expires,
                };
                shard.map.insert(key.to_vec(), entry);
            }
        }
        if let Some(at) = expires {
            shard.set_deadline(key, at);
        }
        resp::simple(out, "OK");
    }

    fn incr(&self, key: &[u8], delta: i64, out: &mut Vec<u8>) {
        let mut shard = lock(self.shard(key));
        if shard.get_live(key).is_none() {
            let zero = Entry {
                value: b"0".to_vec(),
                expires: None,
            };
            shard.map.insert(key.to_vec(), zero);
        }
        let entry = shard.map.get_mut(key).expect("inserted above");
        let Some(old) = resp::parse_i64(&entry.value) else {
            return resp::error(out, WRONG_INT);
        };
        let Some(new) = old.checked_add(delta) else {
            return resp::error(out, "ERR increment or decrement would overflow");
        };
        entry.value.clear();
        resp::push_int(&mut entry.value, new);
        resp::integer(out, new);
    }
}

fn error(out: &mut Vec<u8>, msg: &str) -> Flow {
    resp::error(out, msg);
    Flow::Continue
}
