//! What an operator asks of a key a transaction holds: the intent on it
//! and its transaction's record (`meridian debug txn KEY`).
//!
//! The intent is found by reading the key at the leaseholder's present
//! time: a read that meets another transaction's intent is refused with
//! that transaction's metadata (an intent written at a timestamp ahead of
//! the leaseholder's clock is not seen: such intents are at most
//! `max_offset` old, ask again). The record is then read at its anchor.
//!
//! Not here: acting on what is found (pushing or resolving belongs to the
//! transaction coordinator, issue 10).

use meridian_kvapi::{KvError, Request, TxnMeta, TxnRecord};
use serde::Serialize;

use crate::{ClientError, DistSender};

/// The intent on a key and its transaction's record, if it has one yet
/// (a record is written at the first heartbeat or at the end) or still
/// (records go once every intent is resolved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntentReport {
    pub intent: TxnMeta,
    pub record: Option<TxnRecord>,
}

impl DistSender {
    /// The intent on `key` and its transaction's record; `None` when no
    /// transaction holds the key.
    pub async fn describe_intent(&self, key: &[u8]) -> Result<Option<IntentReport>, ClientError> {
        let intent = match self.send(vec![Request::Get { key: key.to_vec() }]).await {
            Ok(_) => return Ok(None),
            Err(ClientError::Kv(KvError::WriteIntent { txn, .. })) => *txn,
            Err(e) => return Err(e),
        };
        let record = crate::txn::recovery::query(self, &intent.anchor_key, intent.id).await?;
        Ok(Some(IntentReport { intent, record }))
    }
}
