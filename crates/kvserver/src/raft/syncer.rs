//! Group commit: one WAL fsync acknowledges the log appends of every group
//! that wrote since the last one.
//!
//! A log store writes its entries unsynced (visible at once, ordered in the
//! RocksDB WAL) and hands openraft's completion callback here. One thread
//! per node takes all waiting callbacks, fsyncs the WAL once, and completes
//! them. Under load many groups share a sync; when idle, a single append
//! pays one fsync, as it would alone.

use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use meridian_storage::Engine;
use openraft::storage::IOFlushed;
use prometheus_client::metrics::histogram::Histogram;
use tracing::error;

use super::types::TypeConfig;

/// Handle to the node's sync thread. Cloning shares the thread.
#[derive(Clone)]
pub struct Syncer {
    inner: Arc<SyncThread>,
}

/// The thread and its queue. Dropping the last handle closes the queue and
/// joins the thread, so the engine it holds is released before the caller
/// goes on: a RocksDB still closing on a detached thread while the process
/// exits aborts in RocksDB's static destructors.
struct SyncThread {
    tx: Option<mpsc::Sender<IOFlushed<TypeConfig>>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for SyncThread {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                error!("the WAL sync thread panicked");
            }
        }
    }
}

impl Syncer {
    /// Starts the sync thread of `engine`. It stops when every handle is
    /// dropped.
    pub fn start(engine: Engine, latency: Option<Histogram>) -> Syncer {
        let (tx, rx) = mpsc::channel::<IOFlushed<TypeConfig>>();
        let thread = std::thread::Builder::new()
            .name("meridian-wal-sync".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut waiting = vec![first];
                    waiting.extend(rx.try_iter());
                    let started = std::time::Instant::now();
                    let result = engine.sync_wal();
                    if let Some(latency) = &latency {
                        latency.observe(started.elapsed().as_secs_f64());
                    }
                    for callback in waiting {
                        match &result {
                            Ok(()) => callback.io_completed(Ok(())),
                            Err(e) => {
                                error!(error = %e, "WAL sync failed");
                                callback.io_completed(Err(std::io::Error::other(e.to_string())));
                            }
                        }
                    }
                }
            })
            .expect("spawning the WAL sync thread");
        Syncer {
            inner: Arc::new(SyncThread {
                tx: Some(tx),
                thread: Some(thread),
            }),
        }
    }

    /// Completes `callback` once everything written before this call is durable.
    pub fn after_sync(&self, callback: IOFlushed<TypeConfig>) {
        let sent = match &self.inner.tx {
            Some(tx) => tx.send(callback),
            None => Err(mpsc::SendError(callback)),
        };
        if let Err(mpsc::SendError(callback)) = sent {
            callback.io_completed(Err(std::io::Error::other("WAL sync thread stopped")));
        }
    }
}
