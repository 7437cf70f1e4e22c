//! Core runtime benchmarks (issue 2): spawn+join from a fiber and from
//! outside, a yield switch on one worker, a park/unpark round trip between
//! two fibers, 10k timers, and a bare corosensei resume/suspend pair as the
//! floor. Run: `cargo bench --bench core`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult};
use criterion::{criterion_group, criterion_main, Criterion};
use threadlet::{fiber, Runtime};

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

fn corosensei_floor(c: &mut Criterion) {
    c.bench_function("floor/corosensei_resume_suspend", |b| {
        let mut co = Coroutine::new(|y, ()| loop {
            y.suspend(());
        });
        b.iter(|| {
            let r: CoroutineResult<(), ()> = co.resume(());
            std::hint::black_box(r);
        });
    });
}

fn yield_switch(c: &mut Criterion) {
    let rt = runtime(1);
    c.bench_function("yield/switch_one_worker", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                let other = threadlet::spawn(move || {
                    for _ in 0..iters {
                        fiber::yield_now();
                    }
                });
                let start = Instant::now();
                for _ in 0..iters {
                    fiber::yield_now();
                }
                other.join().unwrap();
                // Two switches per iteration (there and back): report one.
                start.elapsed() / 2
            })
        });
    });
}

fn spawn_join(c: &mut Criterion) {
    let rt = runtime(2);
    c.bench_function("spawn/join_from_fiber", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                let start = Instant::now();
                for i in 0..iters {
                    let h = threadlet::spawn(move || i);
                    assert_eq!(h.join().unwrap(), i);
                }
                start.elapsed()
            })
        });
    });
    c.bench_function("spawn/join_from_thread", |b| {
        b.iter(|| rt.spawn(|| 1u32).join().unwrap());
    });
    c.bench_function("spawn/batch_1000_from_fiber", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                let start = Instant::now();
                for _ in 0..iters {
                    let hs: Vec<_> = (0..1000u32).map(|i| threadlet::spawn(move || i)).collect();
                    for h in hs {
                        h.join().unwrap();
                    }
                }
                start.elapsed() / 1000
            })
        });
    });
}

fn park_unpark(c: &mut Criterion) {
    for workers in [1, 2] {
        let rt = runtime(workers);
        c.bench_function(&format!("park/round_trip_{workers}_workers"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(move || {
                    let turn = Arc::new(AtomicU32::new(0));
                    let me = fiber::current();
                    let t = turn.clone();
                    let other = threadlet::spawn(move || {
                        for _ in 0..iters {
                            while t.load(Ordering::Acquire) != 1 {
                                fiber::park();
                            }
                            t.store(0, Ordering::Release);
                            me.unpark();
                        }
                    });
                    let other_fiber = other.fiber().clone();
                    let start = Instant::now();
                    for _ in 0..iters {
                        turn.store(1, Ordering::Release);
                        other_fiber.unpark();
                        while turn.load(Ordering::Acquire) != 0 {
                            fiber::park();
                        }
                    }
                    let elapsed = start.elapsed();
                    other.join().unwrap();
                    elapsed
                })
            });
        });
    }
}

fn timers(c: &mut Criterion) {
    let rt = runtime(2);
    let mut group = c.benchmark_group("timers");
    group.sample_size(10);
    group.bench_function("10k_sleepers_1ms", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let hs: Vec<_> = (0..10_000)
                        .map(|_| threadlet::spawn(|| fiber::sleep(Duration::from_millis(1))))
                        .collect();
                    for h in hs {
                        h.join().unwrap();
                    }
                    total += start.elapsed();
                }
                total
            })
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = corosensei_floor, yield_switch, spawn_join, park_unpark, timers
}
criterion_main!(benches);
