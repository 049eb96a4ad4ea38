//! The openraft glue: types, configuration, log store, state machine,
//! network, group commit.
//!
//! Kept thin on purpose: what a command means is decided in evaluation;
//! this module stores and applies bytes the way openraft requires.

pub mod config;
pub mod log_store;
pub mod network;
pub mod state_machine;
pub mod syncer;
pub mod types;

#[cfg(test)]
mod conformance;
