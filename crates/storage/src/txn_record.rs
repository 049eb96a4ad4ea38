//! Transaction records on disk: the `txn` column family, keyed by the
//! transaction's anchor key and id, so the records anchored in a range's
//! span `[start, end)` are one contiguous key span that moves with the
//! range. A split leaves each record where its anchor falls, a snapshot
//! carries the records of its span, and a replica leaving a node takes its
//! records with its data ([`Batch::clear_data_span`]).
//!
//! The key is the anchor's escaped encoding (the same order-preserving
//! encoding as an MVCC intent key, so the spans line up) followed by the
//! 16 bytes of the transaction id; the value is the postcard-encoded
//! [`TxnRecord`]. Records are not versioned: a record has one state at a
//! time, replaced as the transaction moves from PENDING to its outcome.
//!
//! Not here: what the states mean and who may change them (the transaction
//! layer in kvserver); the MVCC statistics do not count records yet.

use meridian_keys::mvcc::encode_intent_key;
use meridian_kvapi::{TxnId, TxnRecord};

use crate::engine::{Batch, Engine, CF_TXN};

use crate::error::{Result, StorageError};

/// The key of transaction `id`'s record, anchored at `anchor`.
pub fn txn_record_key(anchor: &[u8], id: TxnId) -> Vec<u8> {
    let mut key = encode_intent_key(anchor);
    key.extend_from_slice(&id.0.to_be_bytes());
    key
}

fn encode(record: &TxnRecord) -> Vec<u8> {
    postcard::to_stdvec(record).expect("a transaction record serializes")
}

fn decode(bytes: &[u8]) -> Result<TxnRecord> {
    postcard::from_bytes(bytes).map_err(|e| StorageError::corrupt("transaction record", e))
}

impl Batch {
    /// Writes (or replaces) `record` at its anchor. Part of the batch's
    /// write set: replicated with its data writes.
    pub fn put_txn_record(&mut self, record: &TxnRecord) {
        let key = txn_record_key(&record.meta.anchor_key, record.meta.id);
        self.put_txn_raw(key, encode(record));
    }

    /// Removes the record of transaction `id` anchored at `anchor`.
    pub fn delete_txn_record(&mut self, anchor: &[u8], id: TxnId) {
        self.delete_txn_raw(txn_record_key(anchor, id));
    }

    /// The record of transaction `id` anchored at `anchor` as this batch
    /// would leave it: its own writes first, then the engine.
    pub fn txn_record(&self, anchor: &[u8], id: TxnId) -> Result<Option<TxnRecord>> {
        let key = txn_record_key(anchor, id);
        match self.pending_txn_record(&key) {
            Some(pending) => pending.map(decode).transpose(),
            None => self.engine().txn_record(anchor, id),
        }
    }
}

impl Engine {
    /// The record of transaction `id` anchored at `anchor`, if any.
    pub fn txn_record(&self, anchor: &[u8], id: TxnId) -> Result<Option<TxnRecord>> {
        self.get_cf(CF_TXN, &txn_record_key(anchor, id))?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Every record anchored in `[start, end)`, in anchor order (for
    /// operators, and for recovering abandoned transactions).
    pub fn txn_records_in(&self, start: &[u8], end: &[u8]) -> Result<Vec<TxnRecord>> {
        use crate::cursor::Cursor;
        let lower = encode_intent_key(start);
        let upper = encode_intent_key(end);
        let mut cursor = self.cursor_cf(CF_TXN, Some(&lower), Some(&upper));
        cursor.seek(&lower);
        let mut out = Vec::new();
        while cursor.valid() {
            out.push(decode(cursor.value())?);
            cursor.next();
        }
        cursor.status()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use meridian_hlc::Timestamp;
    use meridian_kvapi::{TxnMeta, TxnStatus};

    use super::*;
    use crate::EngineOptions;

    fn record(anchor: &[u8], id: u128, status: TxnStatus) -> TxnRecord {
        let mut meta = TxnMeta::new(anchor.to_vec(), Timestamp::new(1_000, 0));
        meta.id = TxnId(id);
        TxnRecord {
            meta,
            status,
            last_heartbeat: Timestamp::new(1_000, 0),
            lock_spans: vec![(b"a".to_vec(), b"c".to_vec())],
            in_flight_writes: vec![(b"b".to_vec(), 2)],
        }
    }

    fn engine() -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), &EngineOptions::default()).unwrap();
        (dir, engine)
    }

    #[test]
    fn a_record_is_written_replaced_read_and_deleted() {
        let (_dir, engine) = engine();
        let pending = record(b"k", 7, TxnStatus::Pending);
        let mut batch = engine.batch();
        batch.put_txn_record(&pending);
        engine.commit(batch, false).unwrap();
        assert_eq!(
            engine.txn_record(b"k", TxnId(7)).unwrap(),
            Some(pending.clone())
        );
        assert_eq!(
            engine.txn_record(b"k", TxnId(8)).unwrap(),
            None,
            "another id"
        );
        assert_eq!(
            engine.txn_record(b"kk", TxnId(7)).unwrap(),
            None,
            "another anchor"
        );

        let committed = TxnRecord {
            status: TxnStatus::Committed,
            ..pending
        };
        let mut batch = engine.batch();
        batch.put_txn_record(&committed);
        engine.commit(batch, false).unwrap();
        assert_eq!(engine.txn_record(b"k", TxnId(7)).unwrap(), Some(committed));

        let mut batch = engine.batch();
        batch.delete_txn_record(b"k", TxnId(7));
        engine.commit(batch, false).unwrap();
        assert_eq!(engine.txn_record(b"k", TxnId(7)).unwrap(), None);
    }

    /// The records of a span are those anchored in it, whatever their ids,
    /// so a range and its records split at the same key.
    #[test]
    fn records_are_grouped_by_anchor_span() {
        let (_dir, engine) = engine();
        let mut batch = engine.batch();
        for (anchor, id) in [
            (&b"a"[..], 1),
            (b"m", u128::MAX),
            (b"m\x00", 0),
            (b"ma", 5),
            (b"z", 3),
        ] {
            batch.put_txn_record(&record(anchor, id, TxnStatus::Pending));
        }
        engine.commit(batch, false).unwrap();
        let anchors = |start: &[u8], end: &[u8]| -> Vec<Vec<u8>> {
            engine
                .txn_records_in(start, end)
                .unwrap()
                .into_iter()
                .map(|r| r.meta.anchor_key)
                .collect()
        };
        assert_eq!(anchors(b"a", b"m"), vec![b"a".to_vec()]);
        assert_eq!(
            anchors(b"m", b"z"),
            vec![b"m".to_vec(), b"m\x00".to_vec(), b"ma".to_vec()]
        );
        assert_eq!(anchors(b"m", b"m\x00"), vec![b"m".to_vec()]);
    }

    /// A record written in a batch is read back by the batch, travels in
    /// its write set, and lands where another engine applies that set (as
    /// every replica applies a command).
    #[test]
    fn record_writes_are_read_back_and_replicated_with_the_write_set() {
        let (_dir, leaseholder) = engine();
        let (_dir2, follower) = engine();
        let mut batch = leaseholder.batch();
        batch.put_txn_record(&record(b"k", 1, TxnStatus::Pending));
        batch.put_txn_record(&record(b"k", 2, TxnStatus::Pending));
        batch.delete_txn_record(b"k", TxnId(2));
        assert_eq!(
            batch.txn_record(b"k", TxnId(1)).unwrap().map(|r| r.status),
            Some(TxnStatus::Pending)
        );
        assert_eq!(
            batch.txn_record(b"k", TxnId(2)).unwrap(),
            None,
            "deleted here"
        );
        let set = batch.into_write_set();
        assert!(set.writes.is_empty());
        assert_eq!(set.txn_records.len(), 2, "one put, one delete");

        let mut apply = follower.batch();
        apply.apply_write_set(&set);
        follower.commit(apply, false).unwrap();
        assert!(follower.txn_record(b"k", TxnId(1)).unwrap().is_some());
        assert_eq!(follower.txn_record(b"k", TxnId(2)).unwrap(), None);
    }

    #[test]
    fn a_range_leaving_takes_its_records_and_a_snapshot_carries_them() {
        let (_dir, engine) = engine();
        let mut batch = engine.batch();
        batch.put_txn_record(&record(b"b", 1, TxnStatus::Staging));
        batch.put_txn_record(&record(b"x", 2, TxnStatus::Pending));
        engine.commit(batch, false).unwrap();

        let exported = engine.export_range_data(1, b"a", b"m").unwrap();
        assert_eq!(exported.txn_records.len(), 1);

        let mut batch = engine.batch();
        batch.clear_data_span(b"a", b"m");
        engine.commit(batch, false).unwrap();
        assert_eq!(engine.txn_record(b"b", TxnId(1)).unwrap(), None);
        assert!(
            engine.txn_record(b"x", TxnId(2)).unwrap().is_some(),
            "outside the span"
        );

        let mut batch = engine.batch();
        batch.install_range_data(1, b"a", b"m", &exported);
        engine.commit(batch, false).unwrap();
        assert_eq!(
            engine.txn_record(b"b", TxnId(1)).unwrap().map(|r| r.status),
            Some(TxnStatus::Staging)
        );
    }
}
