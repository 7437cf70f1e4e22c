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

pub use fiber::{spawn, yield_now, JoinHandle};
pub use runtime::{run, Runtime};
