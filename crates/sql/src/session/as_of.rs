//! `AS OF SYSTEM TIME` in a session: a SELECT with the clause runs in a
//! read-only transaction of its own at that time, and `BEGIN AS OF SYSTEM
//! TIME` opens a read-only block there (`Txn::begin_historical`, whose
//! reads may be served by the nearest replica).
//!
//! Not here: what the clause's expression means (`crate::exec::as_of`).

use meridian_kvclient::txn::Txn;
use sqlparser::ast;

use super::{in_failed_transaction, ExecResult, Session, TxnState};
use crate::error::{code, SqlError};
use crate::exec;
use crate::parser::Statement;
use crate::types::Datum;

impl Session {
    /// `BEGIN AS OF SYSTEM TIME at`: a read-only block reading as of then.
    pub(super) fn begin_block_as_of(&mut self, at: &ast::Expr) -> Result<ExecResult, SqlError> {
        match self.txn {
            TxnState::None => {
                let ts = exec::as_of::resolve(
                    at,
                    self.engine.clock.now(),
                    self.engine.follower_read_offset(),
                )?;
                let txn =
                    Txn::begin_historical(self.engine.ds.clone(), self.engine.clock.clone(), ts);
                self.savepoints.clear();
                self.txn = TxnState::Open(txn);
                Ok(ExecResult::command("BEGIN"))
            }
            TxnState::Open(_) => self.in_block_only(Err(as_of_in_block())),
            TxnState::Failed(_) => Err(in_failed_transaction()),
        }
    }

    /// A SELECT with `AS OF SYSTEM TIME at`, in a read-only transaction of
    /// its own at that time (never inside a block: the block's timestamp
    /// is the block's).
    pub(super) async fn select_as_of(
        &mut self,
        query: &ast::Statement,
        at: &ast::Expr,
        params: &[Datum],
    ) -> Result<ExecResult, SqlError> {
        if !matches!(self.txn, TxnState::None) {
            return self.in_block_only(Err(as_of_in_block()));
        }
        let ts = exec::as_of::resolve(
            at,
            self.engine.clock.now(),
            self.engine.follower_read_offset(),
        )?;
        let txn = Txn::begin_historical(self.engine.ds.clone(), self.engine.clock.clone(), ts);
        let ctx = self.context(&txn);
        let statement = Statement::Sql(Box::new(query.clone()));
        let result = exec::execute(&ctx, &statement, params).await;
        txn.commit().await?;
        result
    }
}

fn as_of_in_block() -> SqlError {
    SqlError::new(
        code::FEATURE_NOT_SUPPORTED,
        "AS OF SYSTEM TIME inside a transaction block: give it on the block's BEGIN",
    )
}
