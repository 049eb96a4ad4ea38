//! What replication moves between replicas: the data writes of one command
//! ([`WriteSet`]) and a whole range's state ([`RangeData`], for snapshots).
//!
//! A leaseholder evaluates a command into a [`Batch`]; the batch's data
//! writes become a `WriteSet` carried in the Raft log; every replica applies
//! the same `WriteSet`, so replicas stay byte-identical without evaluating
//! again. Raw RocksDB keys and values are carried as they are; their meaning
//! stays in [`crate::mvcc`].

use meridian_keys::mvcc::encode_intent_key;
use meridian_keys::space::decode_range_local_key;
use meridian_keys::RangeLocalKind;
use rocksdb::{Direction, IteratorMode, ReadOptions};
use serde::{Deserialize, Serialize};

use crate::engine::{Batch, Engine, CF_DATA, CF_RANGE_LOCAL, CF_TXN};
use crate::error::{Result, StorageError};

/// The replicated writes of one evaluated command: each raw key with its
/// new raw value, or `None` for a deletion, in key order; data-family
/// writes and transaction-record writes apart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteSet {
    pub writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub txn_records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteSet {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.txn_records.is_empty()
    }

    pub fn size_in_bytes(&self) -> usize {
        self.writes
            .iter()
            .chain(&self.txn_records)
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
            .sum()
    }
}

impl Batch {
    /// The data and transaction-record writes this batch would make, for
    /// replication. Writes to other column families (range-local records,
    /// the Raft log) are not part of a write set.
    pub fn into_write_set(self) -> WriteSet {
        let (data, txn_records) = self.into_overlays();
        WriteSet {
            writes: data.into_iter().collect(),
            txn_records: txn_records.into_iter().collect(),
        }
    }

    /// Adds the writes of a replicated command to this batch.
    pub fn apply_write_set(&mut self, set: &WriteSet) {
        for (key, value) in &set.writes {
            match value {
                Some(value) => self.put_data(key.clone(), value.clone()),
                None => self.delete_data(key.clone()),
            }
        }
        for (key, value) in &set.txn_records {
            match value {
                Some(value) => self.put_txn_raw(key.clone(), value.clone()),
                None => self.delete_txn_raw(key.clone()),
            }
        }
    }

    /// Replaces everything this node has of range `range_id` (its data in
    /// `[start, end)` and its replicated range-local records) with `data`.
    /// The node's own records of the range (its replica record, its
    /// tombstone) stay.
    pub fn install_range_data(
        &mut self,
        range_id: u64,
        start: &[u8],
        end: &[u8],
        data: &RangeData,
    ) {
        self.clear_data_span(start, end);
        for &kind in RangeLocalKind::REPLICATED {
            self.delete_range_local(range_id, kind);
        }
        for (kind, value) in data.local.iter().filter(|(k, _)| k.is_replicated()) {
            self.put_range_local(range_id, *kind, value);
        }
        for (key, value) in &data.txn_records {
            self.put_cf(CF_TXN, key, value);
        }
        for (key, value) in &data.data {
            self.put_data(key.clone(), value.clone());
        }
    }
}

/// A consistent copy of one range's state: its replicated range-local
/// records, the transaction records anchored in its span, and every data
/// record of its span, read from one RocksDB snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeData {
    pub local: Vec<(RangeLocalKind, Vec<u8>)>,
    /// Raw (key, value) of the `txn` column family.
    pub txn_records: Vec<(Vec<u8>, Vec<u8>)>,
    pub data: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Engine {
    /// Reads range `range_id`'s state, data in `[start, end)`, as of one
    /// point in time.
    pub fn export_range_data(&self, range_id: u64, start: &[u8], end: &[u8]) -> Result<RangeData> {
        self.export_range_data_spanned(range_id, |_| Ok((start.to_vec(), end.to_vec())))
    }

    /// Like [`Engine::export_range_data`], with the span decided by `span`
    /// from the range-local records read at the same point: a range whose
    /// span changes (a split) is exported with the span of that moment.
    pub fn export_range_data_spanned(
        &self,
        range_id: u64,
        span: impl FnOnce(&[(RangeLocalKind, Vec<u8>)]) -> Result<(Vec<u8>, Vec<u8>)>,
    ) -> Result<RangeData> {
        let db = self.db();
        let snapshot = db.snapshot();
        let mut out = RangeData::default();

        let local_start = range_id.to_be_bytes();
        let mut opts = ReadOptions::default();
        opts.set_snapshot(&snapshot);
        opts.set_iterate_lower_bound(local_start.to_vec());
        if let Some(next) = range_id.checked_add(1) {
            opts.set_iterate_upper_bound(next.to_be_bytes().to_vec());
        }
        let mode = IteratorMode::From(&local_start, Direction::Forward);
        for item in db.iterator_cf_opt(self.cf(CF_RANGE_LOCAL), opts, mode) {
            let (key, value) = item?;
            let (_, kind) = decode_range_local_key(&key)
                .map_err(|e| StorageError::corrupt("range-local key", e))?;
            if kind.is_replicated() {
                out.local.push((kind, value.to_vec()));
            }
        }

        let (start, end) = span(&out.local)?;
        let lower = encode_intent_key(&start);
        let mut opts = ReadOptions::default();
        // The data column family has a prefix extractor: without total
        // order, the iterator would stop at the first user key.
        opts.set_total_order_seek(true);
        opts.set_snapshot(&snapshot);
        opts.set_iterate_lower_bound(lower.clone());
        opts.set_iterate_upper_bound(encode_intent_key(&end));
        let mode = IteratorMode::From(&lower, Direction::Forward);
        for item in db.iterator_cf_opt(self.cf(CF_DATA), opts, mode) {
            let (key, value) = item?;
            out.data.push((key.to_vec(), value.to_vec()));
        }
        let mut opts = ReadOptions::default();
        opts.set_snapshot(&snapshot);
        opts.set_iterate_lower_bound(lower.clone());
        opts.set_iterate_upper_bound(encode_intent_key(&end));
        let mode = IteratorMode::From(&lower, Direction::Forward);
        for item in db.iterator_cf_opt(self.cf(CF_TXN), opts, mode) {
            let (key, value) = item?;
            out.txn_records.push((key.to_vec(), value.to_vec()));
        }
        Ok(out)
    }

    /// Makes every write committed so far durable: one fsync of the WAL.
    /// Writes committed with `sync = false` and then covered by this call
    /// are as durable as synced ones; many writers can share one call
    /// (group commit).
    pub fn sync_wal(&self) -> Result<()> {
        self.db().flush_wal(true)?;
        Ok(())
    }
}
