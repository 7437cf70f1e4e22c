//! threadlet: stackful green threads (fibers) for Rust.
//!
//! (The user guide is written as the crate grows; see README.md.)
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub(crate) mod stack;
