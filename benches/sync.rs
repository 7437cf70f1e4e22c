//! Sync benchmarks (issue 4), threadlet beside std in one run: uncontended
//! lock/unlock, a mutex contended by fibers on every worker, channel
//! throughput, and a channel ping-pong between two fibers.
//! Run: `cargo bench --bench sync`. Peers (crossbeam-channel, tokio, may)
//! are in `benches/peers/benches/sync_peers.rs`.

use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use threadlet::sync::{mpmc, Mutex};
use threadlet::Runtime;

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("mutex_uncontended_lock_unlock");
    g.bench_function("threadlet", |b| {
        let m = Mutex::new(0u64);
        b.iter(|| *m.lock().unwrap() += 1);
        black_box(m);
    });
    g.bench_function("threadlet_on_fiber", |b| {
        let rt = runtime(1);
        b.iter_custom(|iters| {
            rt.block_on(move || {
                let m = Mutex::new(0u64);
                let start = Instant::now();
                for _ in 0..iters {
                    *m.lock().unwrap() += 1;
                }
                black_box(&m);
                start.elapsed()
            })
        });
    });
    g.bench_function("std", |b| {
        let m = std::sync::Mutex::new(0u64);
        b.iter(|| *m.lock().unwrap() += 1);
        black_box(m);
    });
    g.finish();
}

/// Total time for `tasks` fibers each doing `iters / tasks` calls of `lock`.
fn contended_fibers<T: Send + Sync + 'static>(
    rt: &Runtime,
    iters: u64,
    tasks: u64,
    m: Arc<T>,
    lock: fn(&T),
) -> Duration {
    rt.block_on(move || {
        let per = (iters / tasks).max(1);
        let start = Instant::now();
        let hs: Vec<_> = (0..tasks)
            .map(|_| {
                let m = m.clone();
                threadlet::spawn(move || {
                    for _ in 0..per {
                        lock(&m);
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        start.elapsed()
    })
}

fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("mutex_contended_4_tasks_2_workers");
    let rt = runtime(2);
    g.bench_function("threadlet_fibers", |b| {
        b.iter_custom(|iters| {
            contended_fibers(&rt, iters, 4, Arc::new(Mutex::new(0u64)), |m| {
                *m.lock().unwrap() += 1
            })
        });
    });
    g.bench_function("std_mutex_on_fibers", |b| {
        b.iter_custom(|iters| {
            contended_fibers(&rt, iters, 4, Arc::new(std::sync::Mutex::new(0u64)), |m| {
                *m.lock().unwrap() += 1
            })
        });
    });
    g.bench_function("std_threads", |b| {
        b.iter_custom(|iters| {
            let m = Arc::new(std::sync::Mutex::new(0u64));
            let per = (iters / 4).max(1);
            let start = Instant::now();
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let m = m.clone();
                    thread::spawn(move || {
                        for _ in 0..per {
                            *m.lock().unwrap() += 1;
                        }
                    })
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
            start.elapsed()
        });
    });
    g.finish();
}

fn throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("channel_throughput_per_message");
    let rt = runtime(2);
    g.bench_function("threadlet_mpmc_bounded_1024_fibers", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                let (s, r) = mpmc::bounded::<u64>(1024);
                let start = Instant::now();
                let consumer =
                    threadlet::spawn(move || r.iter().fold(0u64, |a, v| a.wrapping_add(v)));
                for i in 0..iters {
                    s.send(i).unwrap();
                }
                drop(s);
                black_box(consumer.join().unwrap());
                start.elapsed()
            })
        });
    });
    g.bench_function("threadlet_mpsc_unbounded_fibers", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                let (s, r) = threadlet::sync::mpsc::channel::<u64>();
                let start = Instant::now();
                let consumer =
                    threadlet::spawn(move || r.iter().fold(0u64, |a, v| a.wrapping_add(v)));
                for i in 0..iters {
                    s.send(i).unwrap();
                }
                drop(s);
                black_box(consumer.join().unwrap());
                start.elapsed()
            })
        });
    });
    g.bench_function("std_mpsc_sync_channel_1024_threads", |b| {
        b.iter_custom(|iters| {
            let (s, r) = std::sync::mpsc::sync_channel::<u64>(1024);
            let start = Instant::now();
            let consumer = thread::spawn(move || r.iter().fold(0u64, |a, v| a.wrapping_add(v)));
            for i in 0..iters {
                s.send(i).unwrap();
            }
            drop(s);
            black_box(consumer.join().unwrap());
            start.elapsed()
        });
    });
    g.finish();
}

/// Ping-pong over two `bounded(1)` channels between two fibers.
fn threadlet_ping_pong(rt: &Runtime, iters: u64) -> Duration {
    rt.block_on(move || {
        let (ping_s, ping_r) = mpmc::bounded::<u64>(1);
        let (pong_s, pong_r) = mpmc::bounded::<u64>(1);
        let echo = threadlet::spawn(move || {
            for v in ping_r.iter() {
                pong_s.send(v).unwrap();
            }
        });
        let start = Instant::now();
        for i in 0..iters {
            ping_s.send(i).unwrap();
            black_box(pong_r.recv().unwrap());
        }
        let took = start.elapsed();
        drop(ping_s);
        echo.join().unwrap();
        took
    })
}

fn ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("channel_ping_pong_round_trip");
    let rt1 = runtime(1);
    g.bench_function("threadlet_fibers_1_worker", |b| {
        b.iter_custom(|iters| threadlet_ping_pong(&rt1, iters));
    });
    let rt2 = runtime(2);
    g.bench_function("threadlet_fibers_2_workers", |b| {
        b.iter_custom(|iters| threadlet_ping_pong(&rt2, iters));
    });
    g.bench_function("std_mpsc_threads", |b| {
        b.iter_custom(|iters| {
            let (ping_s, ping_r) = std::sync::mpsc::sync_channel::<u64>(1);
            let (pong_s, pong_r) = std::sync::mpsc::sync_channel::<u64>(1);
            let echo = thread::spawn(move || {
                for v in ping_r.iter() {
                    pong_s.send(v).unwrap();
                }
            });
            let start = Instant::now();
            for i in 0..iters {
                ping_s.send(i).unwrap();
                black_box(pong_r.recv().unwrap());
            }
            let took = start.elapsed();
            drop(ping_s);
            echo.join().unwrap();
            took
        });
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
}

criterion_group! {
    name = benches;
    config = config();
    targets = uncontended, contended, throughput, ping_pong
}
criterion_main!(benches);
