//! The wait routine of every IO call now lives with the IO driver
//! (`reactor/registration.rs`); these names stay importable from here.

#[allow(unused_imports)]
pub(crate) use crate::reactor::{
    can_park, io_loop, spend_budget, timed_out, wait_on, IoCall, Registration,
};
