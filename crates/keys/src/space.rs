//! The key spaces: which prefix means what.
//!
//! Every replicated key starts with a byte naming its space. Range-local
//! keys are not part of the replicated key space at all: they live in their
//! own column family, keyed by range id, and move with their range.
//!
//! | space | layout | holds |
//! |---|---|---|
//! | range-local | `range_id` (8 bytes BE) `kind` (1 byte) | per-range state: applied state (applied index, membership, MVCC stats) and descriptor (own column family) |
//! | meta | `0x02` `end_key` | the descriptor of the range whose end key is `end_key` |
//! | system | `0x03` `name` (escaped) `suffix` | node records, zone configs, liveness, id counters |
//! | catalog | `0x04` `name` (escaped) `suffix` | SQL descriptors: databases, tables, the id counter |
//! | table data | `0x10` `int(table_id)` `int(index_id)` `encoded columns` | rows and index entries |
//!
//! `int(x)` is the ascending integer encoding of [`crate::encoding`], so table
//! 5 index 1 is `0x10 0x29 0x05 0x29 0x01`. Bytes from `0x05` to `0x0f` are
//! free for future system spaces; user keys from the raw KV API may be
//! anything at or above `0x10`.
//!
//! The catalog has a space of its own, apart from the system records, so
//! that it can be a range of its own ([`CATALOG_SPAN`]): every SQL
//! statement reads descriptors, and in a multi-region cluster that range
//! serves present-time reads from a replica in every region, which the
//! first range (liveness, meta records) cannot do.

use crate::encoding::{decode_int_asc, encode_int_asc, escape_into, unescape};
use crate::KeyError;

/// First byte of meta keys.
pub const META_PREFIX: u8 = 0x02;
/// First byte of system keys.
pub const SYSTEM_PREFIX: u8 = 0x03;
/// First byte of SQL catalog keys.
pub const CATALOG_PREFIX: u8 = 0x04;
/// First byte of table data keys.
pub const TABLE_PREFIX: u8 = 0x10;
/// The keys of the catalog range, created at bootstrap: the catalog space
/// and the free bytes after it, up to the table data.
pub const CATALOG_SPAN: (&[u8], &[u8]) = (&[CATALOG_PREFIX], &[TABLE_PREFIX]);
/// The smallest key a range may hold; the first range starts here.
pub const MIN_KEY: &[u8] = &[];
/// A key larger than every key: end of the key space. Empty would be
/// ambiguous with `MIN_KEY`, so ranges end at `[0xff, 0xff]` at most.
pub const MAX_KEY: &[u8] = &[0xff, 0xff];

/// Kinds of range-local records (the last byte of a range-local key).
/// Only what is written has a kind: the membership and the MVCC statistics
/// live inside the applied state, so they move with the applied index in the
/// same record, and the lease is Raft's leader lease, kept in memory. Bytes
/// `0x02`, `0x05` and `0x06` were declared once and never written; a new
/// kind may take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[repr(u8)]
pub enum RangeLocalKind {
    /// What the state machine has applied: the log index, the membership and
    /// the MVCC statistics of the range, written in one record.
    AppliedState = 0x01,
    /// The record that makes a node open the replica at start (the range's
    /// descriptor as this node knows it, and the replica's id).
    Descriptor = 0x03,
    /// Left by a destroyed replica: the lowest replica id this node may
    /// still create for the range, so a stale message or request cannot
    /// bring back a replica that was removed.
    Tombstone = 0x04,
}

impl RangeLocalKind {
    /// The kinds every replica of a range holds alike (they move in
    /// snapshots); the others belong to one node's copy.
    pub const REPLICATED: &'static [RangeLocalKind] = &[RangeLocalKind::AppliedState];

    pub fn is_replicated(self) -> bool {
        Self::REPLICATED.contains(&self)
    }

    pub fn from_byte(b: u8) -> Result<Self, KeyError> {
        Ok(match b {
            0x01 => Self::AppliedState,
            0x03 => Self::Descriptor,
            0x04 => Self::Tombstone,
            other => return Err(KeyError::UnknownTag(other)),
        })
    }
}

/// A key, decoded into its space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// Per-range state, in the range-local column family.
    RangeLocal { range_id: u64, kind: RangeLocalKind },
    /// Meta record: the descriptor of the range ending at `end_key`.
    Meta { end_key: Vec<u8> },
    /// System record `name` with an optional suffix (for example a node id).
    System { name: Vec<u8>, suffix: Vec<u8> },
    /// SQL catalog record `name` with a suffix (for example a table name).
    Catalog { name: Vec<u8>, suffix: Vec<u8> },
    /// A row or index entry: `columns` is the encoded key columns.
    Table {
        table_id: u64,
        index_id: u64,
        columns: Vec<u8>,
    },
    /// A key outside the named spaces (raw KV keys at or above `0x10` that do
    /// not decode as table keys, or anything else).
    Raw(Vec<u8>),
}

impl Key {
    /// Encodes the key. Range-local keys encode to their column-family key.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Key::RangeLocal { range_id, kind } => range_local_key(*range_id, *kind).to_vec(),
            Key::Meta { end_key } => meta_key(end_key),
            Key::System { name, suffix } => system_key(name, suffix),
            Key::Catalog { name, suffix } => catalog_key(name, suffix),
            Key::Table {
                table_id,
                index_id,
                columns,
            } => {
                let mut buf = table_index_prefix(*table_id, *index_id);
                buf.extend_from_slice(columns);
                buf
            }
            Key::Raw(raw) => raw.clone(),
        }
    }

    /// Decodes a replicated key (meta, system, catalog, table, or raw).
    pub fn decode(raw: &[u8]) -> Key {
        Self::try_decode(raw).unwrap_or_else(|_| Key::Raw(raw.to_vec()))
    }

    fn try_decode(raw: &[u8]) -> Result<Key, KeyError> {
        match raw.first() {
            Some(&META_PREFIX) => Ok(Key::Meta {
                end_key: raw[1..].to_vec(),
            }),
            Some(&SYSTEM_PREFIX) => {
                let (name, used) = unescape(&raw[1..], |b| b)?;
                Ok(Key::System {
                    name,
                    suffix: raw[1 + used..].to_vec(),
                })
            }
            Some(&CATALOG_PREFIX) => {
                let (name, used) = unescape(&raw[1..], |b| b)?;
                Ok(Key::Catalog {
                    name,
                    suffix: raw[1 + used..].to_vec(),
                })
            }
            Some(&TABLE_PREFIX) => {
                let (table_id, a) = decode_int_asc(&raw[1..])?;
                let (index_id, b) = decode_int_asc(&raw[1 + a..])?;
                if table_id < 0 || index_id < 0 {
                    return Err(KeyError::Expected("non-negative table and index ids"));
                }
                Ok(Key::Table {
                    table_id: table_id as u64,
                    index_id: index_id as u64,
                    columns: raw[1 + a + b..].to_vec(),
                })
            }
            _ => Err(KeyError::Expected("a known key space")),
        }
    }
}

/// The range-local column-family key of `kind` for range `range_id`.
pub fn range_local_key(range_id: u64, kind: RangeLocalKind) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[..8].copy_from_slice(&range_id.to_be_bytes());
    key[8] = kind as u8;
    key
}

/// Decodes a range-local column-family key.
pub fn decode_range_local_key(raw: &[u8]) -> Result<(u64, RangeLocalKind), KeyError> {
    if raw.len() != 9 {
        return Err(KeyError::Truncated);
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&raw[..8]);
    Ok((u64::from_be_bytes(id), RangeLocalKind::from_byte(raw[8])?))
}

/// The meta key addressing the range that ends at `end_key`. A lookup for
/// key `k` seeks to the first meta key greater than `meta_key(k)`.
pub fn meta_key(end_key: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1 + end_key.len());
    buf.push(META_PREFIX);
    buf.extend_from_slice(end_key);
    buf
}

/// A system key: `name` escaped, then `suffix` as is.
pub fn system_key(name: &[u8], suffix: &[u8]) -> Vec<u8> {
    named_key(SYSTEM_PREFIX, name, suffix)
}

/// A catalog key: `name` escaped, then `suffix` as is.
pub fn catalog_key(name: &[u8], suffix: &[u8]) -> Vec<u8> {
    named_key(CATALOG_PREFIX, name, suffix)
}

fn named_key(space: u8, name: &[u8], suffix: &[u8]) -> Vec<u8> {
    let mut buf = vec![space];
    escape_into(&mut buf, name);
    buf.extend_from_slice(suffix);
    buf
}

/// The prefix of all keys of one index of one table.
pub fn table_index_prefix(table_id: u64, index_id: u64) -> Vec<u8> {
    let mut buf = table_prefix(table_id);
    encode_int_asc(&mut buf, index_id as i64);
    buf
}

/// The prefix of all keys of one table.
pub fn table_prefix(table_id: u64) -> Vec<u8> {
    let mut buf = vec![TABLE_PREFIX];
    encode_int_asc(&mut buf, table_id as i64);
    buf
}

/// The smallest key greater than every key with prefix `prefix`, or `None`
/// when no such key exists (the prefix is all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
