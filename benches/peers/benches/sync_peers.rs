//! Sync peers (issue 4): threadlet's mutex and channels beside
//! crossbeam-channel (threads), tokio::sync (tasks on a 2-worker runtime),
//! may (coroutines, 2 workers) and std, in one run, with the same group names
//! as `benches/sync.rs`. Run: `cargo bench -p threadlet-peers --bench sync_peers`.
//!
//! may's `go!` spawns with an `unsafe fn` (its coroutines may migrate between
//! threads); the closures here touch no thread-locals.

use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use may::go;
use threadlet::sync::{mpmc, Mutex};

fn threadlet_rt(workers: usize) -> threadlet::Runtime {
    threadlet::Runtime::builder()
        .workers(workers)
        .build()
        .unwrap()
}

fn tokio_rt(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `f` in a may coroutine (2 workers) and returns its result.
fn in_may<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    may::config().set_workers(2);
    go!(f).join().unwrap()
}

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("mutex_uncontended_lock_unlock");
    g.bench_function("threadlet", |b| {
        let m = Mutex::new(0u64);
        b.iter(|| *m.lock().unwrap() += 1);
    });
    g.bench_function("std", |b| {
        let m = std::sync::Mutex::new(0u64);
        b.iter(|| *m.lock().unwrap() += 1);
    });
    let rt = tokio_rt(2);
    g.bench_function("tokio_sync_mutex_in_task", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                tokio::spawn(async move {
                    let m = tokio::sync::Mutex::new(0u64);
                    let start = Instant::now();
                    for _ in 0..iters {
                        *m.lock().await += 1;
                    }
                    black_box(&m);
                    start.elapsed()
                })
                .await
                .unwrap()
            })
        });
    });
    g.bench_function("may_sync_mutex_in_coroutine", |b| {
        b.iter_custom(|iters| {
            in_may(move || {
                let m = may::sync::Mutex::new(0u64);
                let start = Instant::now();
                for _ in 0..iters {
                    *m.lock().unwrap() += 1;
                }
                black_box(&m);
                start.elapsed()
            })
        });
    });
    g.finish();
}

fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("mutex_contended_4_tasks_2_workers");
    let trt = threadlet_rt(2);
    g.bench_function("threadlet_fibers", |b| {
        b.iter_custom(|iters| {
            trt.block_on(move || {
                let m = Arc::new(Mutex::new(0u64));
                let per = (iters / 4).max(1);
                let start = Instant::now();
                let hs: Vec<_> = (0..4)
                    .map(|_| {
                        let m = m.clone();
                        threadlet::spawn(move || (0..per).for_each(|_| *m.lock().unwrap() += 1))
                    })
                    .collect();
                hs.into_iter().for_each(|h| h.join().unwrap());
                start.elapsed()
            })
        });
    });
    let rt = tokio_rt(2);
    g.bench_function("tokio_tasks", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                let m = Arc::new(tokio::sync::Mutex::new(0u64));
                let per = (iters / 4).max(1);
                let start = Instant::now();
                let hs: Vec<_> = (0..4)
                    .map(|_| {
                        let m = m.clone();
                        tokio::spawn(async move {
                            for _ in 0..per {
                                *m.lock().await += 1;
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
                start.elapsed()
            })
        });
    });
    g.bench_function("may_coroutines", |b| {
        b.iter_custom(|iters| {
            in_may(move || {
                let m = Arc::new(may::sync::Mutex::new(0u64));
                let per = (iters / 4).max(1);
                let start = Instant::now();
                let hs: Vec<_> = (0..4)
                    .map(|_| {
                        let m = m.clone();
                        go!(move || (0..per).for_each(|_| *m.lock().unwrap() += 1))
                    })
                    .collect();
                hs.into_iter().for_each(|h| h.join().unwrap());
                start.elapsed()
            })
        });
    });
    g.finish();
}

fn throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("channel_throughput_per_message");
    let trt = threadlet_rt(2);
    g.bench_function("threadlet_mpmc_bounded_1024_fibers", |b| {
        b.iter_custom(|iters| {
            trt.block_on(move || {
                let (s, r) = mpmc::bounded::<u64>(1024);
                let start = Instant::now();
                let consumer =
                    threadlet::spawn(move || r.iter().fold(0u64, |a, v| a.wrapping_add(v)));
                (0..iters).for_each(|i| s.send(i).unwrap());
                drop(s);
                black_box(consumer.join().unwrap());
                start.elapsed()
            })
        });
    });
    g.bench_function("crossbeam_bounded_1024_threads", |b| {
        b.iter_custom(|iters| {
            let (s, r) = crossbeam_channel::bounded::<u64>(1024);
            let start = Instant::now();
            let consumer = thread::spawn(move || r.iter().fold(0u64, |a, v| a.wrapping_add(v)));
            (0..iters).for_each(|i| s.send(i).unwrap());
            drop(s);
            black_box(consumer.join().unwrap());
            start.elapsed()
        });
    });
    let rt = tokio_rt(2);
    g.bench_function("tokio_mpsc_1024_tasks", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                tokio::spawn(async move {
                    let (s, mut r) = tokio::sync::mpsc::channel::<u64>(1024);
                    let start = Instant::now();
                    let consumer = tokio::spawn(async move {
                        let mut a = 0u64;
                        while let Some(v) = r.recv().await {
                            a = a.wrapping_add(v);
                        }
                        a
                    });
                    for i in 0..iters {
                        s.send(i).await.unwrap();
                    }
                    drop(s);
                    black_box(consumer.await.unwrap());
                    start.elapsed()
                })
                .await
                .unwrap()
            })
        });
    });
    g.bench_function("may_mpsc_unbounded_coroutines", |b| {
        b.iter_custom(|iters| {
            in_may(move || {
                let (s, r) = may::sync::mpsc::channel::<u64>();
                let start = Instant::now();
                let consumer = go!(move || r.iter().fold(0u64, |a, v| a.wrapping_add(v)));
                (0..iters).for_each(|i| s.send(i).unwrap());
                drop(s);
                black_box(consumer.join().unwrap());
                start.elapsed()
            })
        });
    });
    g.finish();
}

fn ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("channel_ping_pong_round_trip");
    let trt = threadlet_rt(2);
    g.bench_function("threadlet_fibers_2_workers", |b| {
        b.iter_custom(|iters| {
            trt.block_on(move || {
                let (ping_s, ping_r) = mpmc::bounded::<u64>(1);
                let (pong_s, pong_r) = mpmc::bounded::<u64>(1);
                let echo =
                    threadlet::spawn(move || ping_r.iter().for_each(|v| pong_s.send(v).unwrap()));
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
        });
    });
    g.bench_function("crossbeam_bounded_1_threads", |b| {
        b.iter_custom(|iters| {
            let (ping_s, ping_r) = crossbeam_channel::bounded::<u64>(1);
            let (pong_s, pong_r) = crossbeam_channel::bounded::<u64>(1);
            let echo = thread::spawn(move || ping_r.iter().for_each(|v| pong_s.send(v).unwrap()));
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
    let rt = tokio_rt(2);
    g.bench_function("tokio_mpsc_1_tasks_2_workers", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                tokio::spawn(async move {
                    let (ping_s, mut ping_r) = tokio::sync::mpsc::channel::<u64>(1);
                    let (pong_s, mut pong_r) = tokio::sync::mpsc::channel::<u64>(1);
                    let echo = tokio::spawn(async move {
                        while let Some(v) = ping_r.recv().await {
                            pong_s.send(v).await.unwrap();
                        }
                    });
                    let start = Instant::now();
                    for i in 0..iters {
                        ping_s.send(i).await.unwrap();
                        black_box(pong_r.recv().await.unwrap());
                    }
                    let took = start.elapsed();
                    drop(ping_s);
                    echo.await.unwrap();
                    took
                })
                .await
                .unwrap()
            })
        });
    });
    g.bench_function("may_mpsc_coroutines_2_workers", |b| {
        b.iter_custom(|iters| {
            in_may(move || {
                let (ping_s, ping_r) = may::sync::mpsc::channel::<u64>();
                let (pong_s, pong_r) = may::sync::mpsc::channel::<u64>();
                let echo = go!(move || ping_r.iter().for_each(|v| pong_s.send(v).unwrap()));
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
        });
    });
    g.bench_function("std_mpsc_threads", |b| {
        b.iter_custom(|iters| {
            let (ping_s, ping_r) = std::sync::mpsc::sync_channel::<u64>(1);
            let (pong_s, pong_r) = std::sync::mpsc::sync_channel::<u64>(1);
            let echo = thread::spawn(move || ping_r.iter().for_each(|v| pong_s.send(v).unwrap()));
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
