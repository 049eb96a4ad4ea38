//! The crate's one error enum: what can go wrong parsing, validating or
//! synthesizing a zone config, or editing the span map.
//!
//! Owns: the variants and their messages (what a user reads at the CLI).
//! Does not own: the allocator's "cannot do it now" outcomes, which are not
//! errors but part of its [`Decision`](crate::allocator::Decision).

use thiserror::Error;

/// Every failure of this crate. Deterministic: the same input fails the
/// same way on every node, so none of these is worth retrying.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlacementError {
    // --- parsing `CONFIGURE ZONE USING` ---
    /// A field name CockroachDB's syntax does not have.
    #[error("unknown zone config field {field:?} (known: num_replicas, num_voters, constraints, voter_constraints, lease_preferences, range_min_bytes, range_max_bytes, gc.ttlseconds, global_reads)")]
    UnknownField { field: String },
    /// A field given twice in one statement.
    #[error("zone config field {field:?} given twice")]
    DuplicateField { field: String },
    /// A value of the wrong kind for its field.
    #[error("{field} expects {expected}, got {got}")]
    WrongType {
        field: String,
        expected: &'static str,
        got: String,
    },
    /// A constraint, constraint list or lease preference list that does
    /// not parse.
    #[error("malformed constraint {input:?}: {reason}")]
    MalformedConstraint { input: String, reason: String },
    /// The statement itself does not parse (missing `=`, stray text).
    #[error("syntax error at {at:?}: {reason}")]
    Syntax { at: String, reason: &'static str },

    // --- validating a config (alone, then against the cluster) ---
    /// A field outside its allowed range, or two fields at odds.
    #[error("invalid zone config: {0}")]
    Invalid(String),
    /// The cluster's nodes cannot hold what the config asks for.
    #[error("unsatisfiable zone config: {0}")]
    Unsatisfiable(String),

    // --- the span map ---
    /// A span that is empty or reversed.
    #[error("empty key span [{start:?}, {end:?})")]
    EmptySpan { start: Vec<u8>, end: Vec<u8> },
    /// A span that partly overlaps another (spans nest or are disjoint).
    #[error("span [{start:?}, {end:?}) partly overlaps [{other_start:?}, {other_end:?}); zone config spans must nest or be disjoint")]
    OverlappingSpan {
        start: Vec<u8>,
        end: Vec<u8>,
        other_start: Vec<u8>,
        other_end: Vec<u8>,
    },
    /// Removing a span that has no config of its own.
    #[error("no zone config for span [{start:?}, {end:?})")]
    NoSuchSpan { start: Vec<u8>, end: Vec<u8> },

    // --- stored records ---
    /// A zone record in the system key space that does not decode.
    #[error("corrupt zone config record: {0}")]
    CorruptRecord(String),

    // --- multi-region synthesis ---
    /// A multi-region setting CockroachDB refuses too.
    #[error("invalid multi-region settings: {0}")]
    MultiRegion(String),
}
