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
pub mod signal;
mod future;

pub use fiber::{spawn, yield_now, JoinHandle};
pub use runtime::{run, Runtime};
// re-exports: sync (helper-sync edits this line only)
// re-exports: net/io (helper-net edits this line only)
// re-exports: blocking/fs/future (helper-blocking edits this line only)
