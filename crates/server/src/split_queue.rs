//! Splits: the one server function that splits a range, used both by the
//! queue (a range above `range_max_bytes` splits at its middle key) and by
//! `meridian debug split` (at a key the user names).
//!
//! A split, from this node (any node: it goes through the DistSender):
//! 1. refuse keys below `0x10`: the first range (meta and system keys)
//!    never splits;
//! 2. for a split at the middle, find the key that halves the range's
//!    bytes in the local replica's data;
//! 3. allocate the right-hand range's id from the range-id counter;
//! 4. ask the range's leaseholder to split (`admin_split`);
//! 5. write both halves' meta records (the right one first, so a reader
//!    never misses it).
//!
//! Not here: the Raft side of a split (the split command, its apply, the
//! new replica), which belongs to kvserver; the lead will route step 2 to 4
//! through kvserver's split entry point once it exists.

use meridian_keys::space::TABLE_PREFIX;
use meridian_kvapi::RangeId;
use meridian_kvserver::replica::Replica;
use meridian_storage::find_split_key;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::member::Member;
use crate::system::{self, FIRST_RANGE_ID};

/// Where to split a range.
pub enum SplitAt<'a> {
    /// At this key, in whichever range holds it.
    Key(&'a [u8]),
    /// At the middle (by bytes) of this local replica's range.
    Middle(&'a Replica),
}

/// Why a split did not happen. Crosses the wire (`DebugSplitRpc`), so the
/// causes from lower layers are carried as their messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SplitError {
    #[error("keys below 0x10 belong to the meta and system range, which does not split")]
    SystemRange,
    #[error("this node has not joined a cluster yet")]
    NotMember,
    #[error("node stopping")]
    Stopping,
    #[error("finding a split key: {0}")]
    FindKey(String),
    #[error("allocating a range id: {0}")]
    AllocateId(String),
    #[error("split: {0}")]
    Split(String),
    #[error("meta update after split: {0}")]
    Meta(String),
}

/// Whether the queue should split a range of `total_bytes`: never the
/// first range, otherwise above `range_max_bytes`.
pub(crate) fn needs_split(range_id: RangeId, total_bytes: i64, range_max_bytes: u64) -> bool {
    range_id != FIRST_RANGE_ID && total_bytes as u64 > range_max_bytes
}

/// Splits a range (see the module documentation). A range too small to
/// have a middle key is left as it is.
pub async fn split(member: &Member, at: SplitAt<'_>) -> Result<(), SplitError> {
    let split_key = match at {
        SplitAt::Key(key) => key.to_vec(),
        SplitAt::Middle(replica) => {
            let span = replica.span();
            let found = find_split_key(member.store.engine(), &span.0, &span.1)
                .map_err(|e| SplitError::FindKey(e.to_string()))?;
            match found {
                Some(key) => key,
                None => return Ok(()),
            }
        }
    };
    if split_key.first().is_none_or(|&b| b < TABLE_PREFIX) {
        return Err(SplitError::SystemRange);
    }
    let ds = &member.ds;
    // Ranges 1 and 2 exist from the bootstrap.
    let right_id = system::next_id(ds, system::RANGE_ID_COUNTER, 3)
        .await
        .map_err(|e| SplitError::AllocateId(e.to_string()))?;
    let (left, right) = ds
        .admin_split(&split_key, right_id)
        .await
        .map_err(|e| SplitError::Split(e.to_string()))?;
    info!(left = left.range_id, right = right.range_id, "range split");
    for d in [&right, &left] {
        system::update_meta(ds, d)
            .await
            .map_err(|e| SplitError::Meta(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_range_never_splits() {
        assert!(!needs_split(FIRST_RANGE_ID, 1 << 40, 512 << 20));
    }

    #[test]
    fn a_range_splits_only_above_the_limit() {
        assert!(!needs_split(2, 512 << 20, 512 << 20));
        assert!(needs_split(2, (512 << 20) + 1, 512 << 20));
        assert!(needs_split(7, 2_000, 1_000));
    }

    #[test]
    fn split_errors_cross_the_wire() {
        for error in [
            SplitError::SystemRange,
            SplitError::Split("no leaseholder".into()),
        ] {
            let bytes = postcard::to_allocvec(&error).expect("encodes");
            let back: SplitError = postcard::from_bytes(&bytes).expect("decodes");
            assert_eq!(back, error);
        }
    }
}
