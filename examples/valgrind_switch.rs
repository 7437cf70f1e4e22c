//! A small workload for checking threadlet under valgrind's memcheck:
//! fibers on nearby stacks switching back and forth. Fiber stacks are
//! registered with valgrind (`VALGRIND_STACK_REGISTER`), so memcheck reports
//! no "client switching stacks?" warnings:
//!
//! ```text
//! cargo build --example valgrind_switch
//! valgrind --error-exitcode=1 target/debug/examples/valgrind_switch
//! ```

use threadlet::sync::mpsc;

fn main() {
    let total = threadlet::run(|| {
        let (tx, rx) = mpsc::channel::<u64>();
        let workers: Vec<_> = (0..8u64)
            .map(|i| {
                let tx = tx.clone();
                threadlet::spawn(move || {
                    for k in 0..50 {
                        tx.send(i * 100 + k).unwrap();
                        threadlet::yield_now();
                    }
                })
            })
            .collect();
        drop(tx);
        let total: u64 = rx.iter().sum();
        for w in workers {
            w.join().unwrap();
        }
        total
    });
    println!("total {total}");
}
