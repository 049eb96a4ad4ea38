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
    /// The id the session's database had when last read, kept across
    /// transactions: only a guess, checked by the read that uses it
    /// ([`super::Catalog::database_and_tables`]).
    pub last_database_id: Option<(String, u64)>,
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
                last_database_id: self.last_database_id.take(),
                ..Default::default()
            };
        }
    }

    /// Forgets everything the transaction read (it changed the catalog).
    pub fn clear(&mut self) {
        *self = TxnDescriptors {
            last_database_id: self.last_database_id.take(),
            ..Default::default()
        };
    }

    /// The id to guess for database `name`.
    pub fn guess_database_id(&self, name: &str) -> Option<u64> {
        match &self.last_database_id {
            Some((last, id)) if last == name => Some(*id),
            _ => super::store::built_in_database_id(name),
        }
    }
}
