//! Range-local records: per-range state that is not addressed by user key
//! (applied index, lease, descriptor, stats, GC threshold), in the
//! `range_local` column family under [`meridian_keys::space::range_local_key`].
//!
//! The replica writes its applied index in the same batch as the data of the
//! command it applied, so a crash never separates the two.

use meridian_keys::space::range_local_key;
use meridian_keys::RangeLocalKind;

use crate::engine::{Batch, Engine, CF_RANGE_LOCAL};
use crate::error::Result;

impl Batch {
    pub fn put_range_local(&mut self, range_id: u64, kind: RangeLocalKind, value: &[u8]) {
        self.put_cf(CF_RANGE_LOCAL, &range_local_key(range_id, kind), value);
    }

    pub fn delete_range_local(&mut self, range_id: u64, kind: RangeLocalKind) {
        self.delete_cf(CF_RANGE_LOCAL, &range_local_key(range_id, kind));
    }

    /// Removes all range-local records of `range_id`.
    pub fn clear_range_local(&mut self, range_id: u64) {
        let start = range_id.to_be_bytes();
        match range_id.checked_add(1) {
            Some(next) => self.delete_range_cf(CF_RANGE_LOCAL, &start, &next.to_be_bytes()),
            None => self.delete_range_cf(CF_RANGE_LOCAL, &start, &[0xff; 9]),
        }
    }

    /// Removes every MVCC record of user keys in `[start, end)`, and the
    /// transaction records anchored there: what a replica does when its
    /// range (or part of it) leaves this node.
    pub fn clear_data_span(&mut self, start: &[u8], end: &[u8]) {
        use meridian_keys::mvcc::encode_intent_key;
        let lower = encode_intent_key(start);
        let upper = encode_intent_key(end);
        self.delete_range_cf(crate::engine::CF_DATA, &lower, &upper);
        self.delete_range_cf(crate::engine::CF_TXN, &lower, &upper);
    }
}

impl Engine {
    /// Every range's record of `kind`, by range id: how a node finds the
    /// replicas it holds when it starts.
    pub fn range_local_all(&self, kind: RangeLocalKind) -> Result<Vec<(u64, Vec<u8>)>> {
        use crate::cursor::Cursor;
        let mut cursor = self.cursor_cf(CF_RANGE_LOCAL, None, None);
        cursor.seek(&[]);
        let mut out = Vec::new();
        while cursor.valid() {
            let key = cursor.key();
            if key.len() == 9 && key[8] == kind as u8 {
                let mut id = [0u8; 8];
                id.copy_from_slice(&key[..8]);
                out.push((u64::from_be_bytes(id), cursor.value().to_vec()));
            }
            cursor.next();
        }
        cursor.status()?;
        Ok(out)
    }

    pub fn range_local(&self, range_id: u64, kind: RangeLocalKind) -> Result<Option<Vec<u8>>> {
        self.get_cf(CF_RANGE_LOCAL, &range_local_key(range_id, kind))
    }
}
