//! Descriptors a transaction has read, kept for the rest of that
//! transaction: a transaction reads its own writes and nobody else's after
//! its timestamp, so reading a descriptor again within it returns the same
//! record, unless the transaction itself changed the catalog (then the
//! cache is dropped). A new transaction starts with an empty cache; a
//! cache across transactions needs descriptor leases (not built).

use std::collections::HashMap;
use std::sync::Arc;

use meridian_kvapi::TxnId;

use super::{DatabaseDescriptor, TableDescriptor};

#[derive(Default)]
pub struct TxnDescriptors {
    txn: Option<TxnId>,
    pub database: Option<DatabaseDescriptor>,
    /// By name; `None`: the transaction found no such table.
    pub tables: HashMap<String, Option<Arc<TableDescriptor>>>,
}

impl TxnDescriptors {
    /// Empties the cache unless it belongs to transaction `txn`.
    pub fn for_txn(&mut self, txn: TxnId) {
        if self.txn != Some(txn) {
            *self = TxnDescriptors {
                txn: Some(txn),
                ..Default::default()
            };
        }
    }

    /// Forgets everything (the transaction changed the catalog).
    pub fn clear(&mut self) {
        *self = TxnDescriptors::default();
    }
}
