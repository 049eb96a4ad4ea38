//! Keeping a transaction's record alive: once it wrote, its coordinator
//! heartbeats the record every [`HEARTBEAT_INTERVAL`] until it ends, so
//! other transactions do not take it for abandoned (they may after
//! `TXN_HEARTBEAT_EXPIRY` without one). A heartbeat that finds the record
//! aborted tells the transaction, which then cannot commit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use meridian_hlc::HybridClock;
use meridian_kvapi::{KvError, Request, TxnMeta};
use tokio::sync::watch;

use crate::{BatchHeader, ClientError, DistSender};

/// How often a live transaction heartbeats its record.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// A running heartbeat loop; dropping it (or [`Heartbeat::stop`]) ends it.
pub struct Heartbeat {
    stop: watch::Sender<bool>,
    aborted: Arc<AtomicBool>,
}

impl Heartbeat {
    /// Heartbeats `txn`'s record after `first_after` and then every
    /// interval.
    pub fn start(
        ds: DistSender,
        clock: Arc<HybridClock>,
        txn: TxnMeta,
        first_after: Duration,
    ) -> Heartbeat {
        let (stop, mut stopped) = watch::channel(false);
        let aborted = Arc::new(AtomicBool::new(false));
        let flag = aborted.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(first_after) => {}
                _ = stopped.changed() => return,
            }
            loop {
                let beat = Request::HeartbeatTxn {
                    key: txn.anchor_key.clone(),
                    now: clock.now(),
                };
                let header = BatchHeader {
                    timestamp: Some(txn.write_timestamp),
                    txn: Some(txn.clone()),
                    nearest_replica: false,
                };
                if let Err(ClientError::Kv(KvError::TransactionAborted { .. })) =
                    ds.send_with(&header, vec![beat]).await
                {
                    flag.store(true, Ordering::Relaxed);
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(HEARTBEAT_INTERVAL) => {}
                    _ = stopped.changed() => return,
                }
            }
        });
        Heartbeat { stop, aborted }
    }

    /// Whether a heartbeat found the record aborted.
    pub fn aborted(&self) -> bool {
        self.aborted.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop();
    }
}
