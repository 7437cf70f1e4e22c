//! Fiber stacks (being written).
