//! Workload generators: load that drives a Meridian cluster and the figures
//! that measure it.
//!
//! This crate owns what a benchmark does and how it counts: which keys and
//! values it sends, how many requests run at once and for how long, and how
//! latencies and errors become progress lines and a final summary. It does not
//! own how requests reach a cluster. A workload drives a narrow trait
//! ([`kv::KvTarget`]); the CLI implements it over the KV client, and tests
//! implement it in memory. So this crate depends on no server or client
//! crate, and its driver is tested without a cluster.
//!
//! Modules:
//!
//! - [`kv`]: `meridian bench kv`, modelled on `cockroach workload run kv`:
//!   uniformly random reads and writes of fixed-size values over a key space
//!   of `keys` rows of one table.
//! - [`regions`]: `meridian bench regions`: point reads and writes from
//!   a gateway in each region on REGIONAL BY ROW, REGIONAL BY TABLE and
//!   GLOBAL tables under each survival goal, next to the floor the latency
//!   matrix allows; text, JSON and SVG reports.
//! - [`drill`]: `meridian drill zone|region`: writers in every region
//!   while a zone or region stops and comes back; recovery time per
//!   writer, lost writes, and the time until leases are home again.
//! - `stats` (private): latency histograms and error counts, recorded by
//!   workers and merged by the reporter.
//! - `report` (private, re-exported by [`kv`]): the progress line, the final
//!   summary and their text and JSON forms.
//!
//! One run of [`kv::run`], step by step:
//!
//! 1. The config is validated ([`kv::KvConfig::validate`]); nothing runs on a
//!    bad one.
//! 2. `concurrency` tokio tasks start. Each owns a random generator seeded
//!    from `seed + worker`, so a run's stream of operations is reproducible.
//! 3. Each worker loops until the deadline: pick a key, read or write it,
//!    time the call, record the latency (or the error) in its stats shard.
//!    An op in flight at the deadline finishes and is counted.
//! 4. Every second the reporter swaps each shard's stats for empty ones,
//!    merges them into the interval's figures, hands a [`kv::ProgressLine`]
//!    to the caller, and folds the interval into the cumulative figures.
//! 5. When every worker has stopped, the reporter collects what is left and
//!    returns a [`kv::KvSummary`], which renders as text or JSON.

pub mod bank;
pub mod drill;
mod error;
pub mod kv;
pub mod regions;
mod report;
mod stats;

pub use error::WorkloadError;
