//! The wire contract of the KV RPCs: message kinds and their request and
//! response types. Servers and clients each declare their transport RPC
//! from these, so both sides agree without depending on each other.

use serde::{Deserialize, Serialize};

use crate::{KvError, RangeDescriptor, RangeId};

/// Kind of the RPC carrying a [`crate::BatchRequest`] to a range's
/// leaseholder; answered with a [`crate::BatchResult`].
pub const BATCH_KIND: u16 = 110;

/// Kind of the RPC asking a range's leaseholder to split it
/// ([`AdminSplitRequest`] -> [`AdminSplitResult`]).
pub const ADMIN_SPLIT_KIND: u16 = 115;

/// Splits range `range_id` at `split_key`; the right-hand side becomes
/// range `right_range_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminSplitRequest {
    pub range_id: RangeId,
    pub split_key: Vec<u8>,
    pub right_range_id: RangeId,
}

/// The left and right descriptors after a split.
pub type AdminSplitResult = Result<(RangeDescriptor, RangeDescriptor), KvError>;

/// The value stored at a range's meta key: its descriptor.
pub fn encode_meta_value(descriptor: &RangeDescriptor) -> Vec<u8> {
    postcard::to_stdvec(descriptor).expect("descriptors serialize")
}

/// Decodes a meta value; `None` if it is not a descriptor.
pub fn decode_meta_value(bytes: &[u8]) -> Option<RangeDescriptor> {
    postcard::from_bytes(bytes).ok()
}
