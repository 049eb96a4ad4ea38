//! `SAVEPOINT`, `RELEASE SAVEPOINT` and `ROLLBACK TO SAVEPOINT` in a
//! transaction block, as PostgreSQL has them: savepoints nest by name
//! (a name may repeat; the newest is meant), releasing one releases those
//! taken after it, and rolling back to one undoes every write made since
//! (the KV transaction's [`meridian_kvclient::txn::Savepoint`]), keeps that
//! savepoint and drops the later ones. Rolling back to a savepoint also
//! recovers a block that a statement's error failed, unless the error was
//! a serialization failure (40001): then the transaction itself is gone
//! and must be retried from the start.
//!
//! Not here: the block itself (BEGIN, COMMIT, ROLLBACK) and how an error
//! fails it ([`super`]).

use meridian_kvclient::txn::Savepoint;
use sqlparser::ast;

use super::{in_failed_transaction, ExecResult, Session, TxnState};
use crate::error::{code, SqlError};
use crate::plan::bind::ident;

/// A savepoint the session took: its name and where it returns to.
pub(super) struct NamedSavepoint {
    name: String,
    savepoint: Savepoint,
}

impl Session {
    pub(super) fn savepoint(&mut self, name: &ast::Ident) -> Result<ExecResult, SqlError> {
        match &self.txn {
            TxnState::Open(txn) => {
                let savepoint = txn.savepoint();
                self.savepoints.push(NamedSavepoint {
                    name: ident(name),
                    savepoint,
                });
                Ok(ExecResult::command("SAVEPOINT"))
            }
            TxnState::Failed(_) => Err(in_failed_transaction()),
            TxnState::None => Err(outside_block("SAVEPOINT")),
        }
    }

    pub(super) fn release_savepoint(&mut self, name: &ast::Ident) -> Result<ExecResult, SqlError> {
        match &self.txn {
            TxnState::Open(_) => match self.find_savepoint(name) {
                Ok(position) => {
                    self.savepoints.truncate(position);
                    Ok(ExecResult::command("RELEASE"))
                }
                Err(e) => {
                    self.fail_open_txn(false);
                    Err(e)
                }
            },
            TxnState::Failed(_) => Err(in_failed_transaction()),
            TxnState::None => Err(outside_block("RELEASE SAVEPOINT")),
        }
    }

    pub(super) fn rollback_to_savepoint(
        &mut self,
        name: &ast::Ident,
    ) -> Result<ExecResult, SqlError> {
        let position = match (&self.txn, self.find_savepoint(name)) {
            (TxnState::None, _) => return Err(outside_block("ROLLBACK TO SAVEPOINT")),
            (_, Err(e)) => {
                self.fail_open_txn(false);
                return Err(e);
            }
            (_, Ok(position)) => position,
        };
        let txn = match &self.txn {
            TxnState::Open(txn) | TxnState::Failed(Some(txn)) => txn.clone(),
            _ => {
                return Err(SqlError::new(
                    code::SERIALIZATION_FAILURE,
                    "restart transaction: a serialization failure ended it; \
                     ROLLBACK and run it again",
                ))
            }
        };
        if let Err(e) = txn.rollback_to(self.savepoints[position].savepoint) {
            self.fail_open_txn(true);
            return Err(e.into());
        }
        self.savepoints.truncate(position + 1);
        // Descriptors the undone writes changed may be cached.
        self.descriptors.lock().clear();
        self.txn = TxnState::Open(txn);
        Ok(ExecResult::command("ROLLBACK"))
    }

    /// The position of the newest savepoint called `name`.
    fn find_savepoint(&self, name: &ast::Ident) -> Result<usize, SqlError> {
        let name = ident(name);
        self.savepoints
            .iter()
            .rposition(|s| s.name == name)
            .ok_or_else(|| {
                SqlError::new(
                    code::INVALID_SAVEPOINT,
                    format!("savepoint \"{name}\" does not exist"),
                )
            })
    }
}

fn outside_block(what: &str) -> SqlError {
    SqlError::new(
        code::NO_ACTIVE_SQL_TRANSACTION,
        format!("{what} can only be used in transaction blocks"),
    )
}
