//! threadlet: stackful green threads (fibers) for Rust.
//!
//! (The full user guide is written as the crate grows; see README.md.)
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

// Layers, lowest first; a module only uses the ones above it in this list.
mod stack;
mod context;
pub mod fiber;
mod park;
mod reactor;
pub mod time;
mod scheduler;
pub mod runtime;
pub mod sync;
pub mod net;
pub mod io;
mod blocking;
pub mod fs;
pub mod signal;
mod future;

pub use fiber::{spawn, yield_now, JoinHandle};
pub use runtime::{run, Runtime};

// re-exports: net/io (helper-net edits this line only)
pub use blocking::{set_max_blocking_threads, unblock}; pub use future::block_on; #[doc(hidden)] pub use blocking::{blocking_threads, set_blocking_idle_timeout}; // re-exports: blocking/fs/future (helper-blocking edits this line only)
