//! Keys: how everything Meridian stores is named, as ordered bytes.
//!
//! All layers above storage see keys as byte strings compared bytewise. This
//! crate decides what those bytes are:
//!
//! - [`encoding`]: order-preserving, prefix-free encodings of typed values
//!   (NULL, bool, integers, floats, strings, bytes; ascending or descending),
//!   so that a row's key columns become one byte string whose order is the
//!   SQL order of the columns.
//! - [`space`]: the key spaces (range-local, meta, system, table data) as a
//!   documented enum, with the byte layout of each.
//! - [`mvcc`]: how a user key and a timestamp become one RocksDB key, so that
//!   a key's intent comes first and its versions follow newest first.
//!
//! Size limits ([`MAX_KEY_BYTES`], [`MAX_VALUE_BYTES`]) are defined here so
//! every layer refuses the same oversized input. Decoders never panic on bad
//! bytes: they return [`KeyError`].

pub mod encoding;
pub mod mvcc;
pub mod space;

pub use encoding::{decode_value, decode_values, encode_value, encode_values, Direction, Value};
pub use space::{Key, RangeLocalKind};

/// The largest user key accepted, in bytes (before MVCC encoding).
pub const MAX_KEY_BYTES: usize = 32 * 1024;
/// The largest value accepted, in bytes. Large enough for any row; small
/// enough that a Raft entry and a transport frame stay bounded.
pub const MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;

/// Why a byte string could not be decoded as a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key is truncated")]
    Truncated,
    #[error("unknown tag byte {0:#04x}")]
    UnknownTag(u8),
    #[error("invalid escape sequence 0x00 {0:#04x}")]
    BadEscape(u8),
    #[error("string column is not valid UTF-8")]
    InvalidUtf8,
    #[error("integer is not in canonical form")]
    NonCanonicalInt,
    #[error("timestamp suffix has {0} bytes, expected 0 or 12")]
    BadTimestampSuffix(usize),
    #[error("expected {0}")]
    Expected(&'static str),
}

#[cfg(test)]
mod tests;
