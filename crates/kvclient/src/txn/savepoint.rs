//! Savepoints: a point in a transaction that a later rollback returns to,
//! undoing the writes made since without ending the transaction (SQL's
//! `SAVEPOINT` and `ROLLBACK TO SAVEPOINT`).
//!
//! Every write batch takes the next sequence number, and an intent keeps
//! the transaction's earlier writes of its key by sequence number
//! (storage's `IntentRecord::history`). A savepoint is the sequence number
//! it was taken at; rolling back to it marks every later one ignored
//! (`TxnMeta::ignored_seqs`), which every later batch carries: the
//! transaction's own reads, and the resolution of its intents at commit,
//! pass over ignored writes to the last one that counts, or to the value
//! below the intent when none does. The intents themselves stay until the
//! transaction ends (they keep other writers off those keys, as in
//! CockroachDB), and so do the reads made since the savepoint (a refresh
//! still checks them).
//!
//! Not here: the writes and reads ([`super`]), naming savepoints (SQL's
//! session).

use super::{Txn, TxnError};
use crate::ClientError;

/// A point in a transaction to roll back to ([`Txn::savepoint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Savepoint {
    sequence: u32,
}

impl Txn {
    /// The transaction as it stands: a later [`Txn::rollback_to`] undoes
    /// every write made after this call.
    pub fn savepoint(&self) -> Savepoint {
        Savepoint {
            sequence: self.inner.state.lock().meta.sequence,
        }
    }

    /// Undoes every write made since `savepoint`, keeping the transaction
    /// open. Writes still in flight from before this call (a statement
    /// cancelled half-way) are undone too when they land: they carry the
    /// sequence numbers this marks ignored.
    pub fn rollback_to(&self, savepoint: Savepoint) -> Result<(), TxnError> {
        let mut state = self.inner.state.lock();
        if state.ended {
            return Err(TxnError::Client(ClientError::InvalidRequest(
                "the transaction has ended".into(),
            )));
        }
        state.meta.ignore_after(savepoint.sequence);
        Ok(())
    }
}
