//! MVCC key encoding: where a user key's intent and versions sit in RocksDB.
//!
//! A user key `k` (any bytes) is escaped (`0x00` becomes `0x00 0xff`) and
//! terminated by `0x00 0x01`, then:
//!
//! | record | layout |
//! |---|---|
//! | intent (at most one per key) | `escape(k) 0x00 0x01` |
//! | version at timestamp `t` | `escape(k) 0x00 0x01` `!t.wall_nanos` (8 bytes BE) `!t.logical` (4 bytes BE) |
//!
//! Bytewise order of the encoded keys is therefore: user keys in order; for
//! one user key, its intent first, then its versions newest first. The
//! escaping makes the encoding prefix-free, so the versions of `a` never
//! interleave with those of `a\x00`, and RocksDB's default bytewise
//! comparator can be used (no comparator callback on the hot path).

use meridian_hlc::Timestamp;

use crate::encoding::{escape_into, unescape};
use crate::KeyError;

/// Length of the encoded timestamp suffix of a version key.
pub const TIMESTAMP_SUFFIX_LEN: usize = 12;

/// A decoded data-column-family key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MvccKey {
    pub key: Vec<u8>,
    /// `None` for the intent record, `Some(ts)` for a version.
    pub timestamp: Option<Timestamp>,
}

/// The key of `key`'s intent record. Every version of `key` sorts after it.
pub fn encode_intent_key(key: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(key.len() + 2 + TIMESTAMP_SUFFIX_LEN);
    escape_into(&mut buf, key);
    buf
}

/// The key of `key`'s version at `ts`.
pub fn encode_version_key(key: &[u8], ts: Timestamp) -> Vec<u8> {
    let mut buf = encode_intent_key(key);
    append_timestamp(&mut buf, ts);
    buf
}

/// Appends the inverted timestamp suffix to an intent key, making it the key
/// of that version. Lets a caller reuse one buffer.
pub fn append_timestamp(buf: &mut Vec<u8>, ts: Timestamp) {
    buf.extend_from_slice(&(!ts.wall_nanos).to_be_bytes());
    buf.extend_from_slice(&(!ts.logical).to_be_bytes());
}

/// The smallest encoded key of user key `key` or any later user key: the
/// lower bound of a scan that starts at `key`.
pub fn encode_scan_start(key: &[u8]) -> Vec<u8> {
    encode_intent_key(key)
}

/// Decodes a data-CF key into its user key and optional timestamp.
pub fn decode_mvcc_key(raw: &[u8]) -> Result<MvccKey, KeyError> {
    let (key, used) = unescape(raw, |b| b)?;
    let rest = &raw[used..];
    let timestamp = match rest.len() {
        0 => None,
        TIMESTAMP_SUFFIX_LEN => Some(decode_timestamp_suffix(rest)),
        n => return Err(KeyError::BadTimestampSuffix(n)),
    };
    Ok(MvccKey { key, timestamp })
}

/// The length of the encoded user-key part (`escape(k) 0x00 0x01`) of a raw
/// data-CF key, without allocating. Two raw keys belong to the same user key
/// exactly when these prefixes are equal.
pub fn user_key_prefix_len(raw: &[u8]) -> Result<usize, KeyError> {
    let mut i = 0;
    loop {
        let b = *raw.get(i).ok_or(KeyError::Truncated)?;
        if b != 0x00 {
            i += 1;
            continue;
        }
        match raw.get(i + 1) {
            Some(0xff) => i += 2,
            Some(0x01) => return Ok(i + 2),
            Some(other) => return Err(KeyError::BadEscape(*other)),
            None => return Err(KeyError::Truncated),
        }
    }
}

/// Decodes the timestamp of a version key whose user-key prefix is
/// `prefix_len` long. `None` for an intent key.
pub fn version_timestamp(raw: &[u8], prefix_len: usize) -> Result<Option<Timestamp>, KeyError> {
    match raw.len() - prefix_len {
        0 => Ok(None),
        TIMESTAMP_SUFFIX_LEN => Ok(Some(decode_timestamp_suffix(&raw[prefix_len..]))),
        n => Err(KeyError::BadTimestampSuffix(n)),
    }
}

fn decode_timestamp_suffix(suffix: &[u8]) -> Timestamp {
    let mut wall = [0u8; 8];
    wall.copy_from_slice(&suffix[..8]);
    let mut logical = [0u8; 4];
    logical.copy_from_slice(&suffix[8..12]);
    Timestamp::new(!u64::from_be_bytes(wall), !u32::from_be_bytes(logical))
}
