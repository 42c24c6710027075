//! # azmi-support: the I/O both azmi transports need that the core cannot hold
//!
//! Blocking, standard library only; the async transport calls it from
//! `tokio::task::spawn_blocking`.

#![forbid(unsafe_code)]

pub mod local_time;
pub mod process;
