//! The timestamp cache: the highest timestamp each key span was read at
//! under the current lease, so no write goes at or below a read of its keys.
//!
//! This module owns [`TimestampCache`] (one per leaseholder, inside the
//! lease's bookkeeping, [`crate::lease::LeaseState`]) and which spans a
//! request reads or writes as far as the cache is concerned
//! ([`read_span`], [`write_span`]). It does not own where a write goes
//! once the cache answered (the lease rules, [`crate::lease`]), nor when
//! reads are recorded ([`crate::replica`]: after they were evaluated,
//! under their latches).
//!
//! ## The structure
//!
//! Non-overlapping segments `[start, end)` in a `BTreeMap` keyed by start,
//! each summarising the reads recorded over it ([`Reads`]): the highest
//! timestamp, the one transaction that read there if only one did, and the
//! highest timestamp any *other* reader read at. That is all a lookup
//! excluding one transaction needs, exactly: a transaction's own reads never
//! push its writes (they were at or below its timestamp), anyone else's do.
//! Key space outside every segment reads as the *low-water mark*, a floor
//! that counts for every transaction. Recording a span splits the segments
//! at its ends, updates those inside, fills the gaps, and merges neighbours
//! that came out equal; a lookup visits the segments overlapping its span.
//! Both are `O(log n + k)` for `k` segments touched (one or two for a
//! point).
//!
//! ## Bounded memory
//!
//! Past its [`TsCacheLimits`] (segments or bytes) the cache evicts the
//! quarter of segments with the lowest timestamps, repeatedly until it is
//! back under three quarters of both limits: the low-water mark rises to
//! the highest evicted timestamp, so every evicted read stays covered (a
//! lookup never returns less than before; writes may be pushed higher than
//! they need, never lower). Evicting the lowest timestamps raises the floor
//! the least. The floor knows no transaction, so an evicted read of a
//! transaction's own may push that transaction's write: safe, and rare.
//!
//! ## Where the floor starts
//!
//! A new lease (a new Raft term at this replica) gets a new cache whose
//! low-water mark is the lease's start, which is above everything a previous
//! lease could have served ([`crate::lease`]). The right-hand range of a
//! split needs no copy of its parent's cache: every lease of the new range
//! starts above the split's lease floor, the parent leaseholder's clock at
//! the split, which is at or above every read the parent served (it moved
//! its clock up to each before releasing the read's latches, and the split
//! waits for a latch over the whole range), and at or above what earlier
//! leases of the parent served (its start is `physical + max_offset` after
//! they expired). A copy would only keep a transaction's own parent-side
//! reads from pushing its right-hand writes, for transactions older than
//! the split.
//!
//! ## A write under a read
//!
//! A transactional write at or below a read of its keys by someone else is
//! refused with `WriteTooOld`; the coordinator moves the transaction above
//! the read, checks that its own reads are unchanged there (refresh, in
//! `kvclient::txn::refresh`) and writes again. CockroachDB writes the
//! intent at the pushed timestamp in the same round instead, which saves
//! that round trip; not done yet. Nor is the previous leaseholder's cache
//! carried across a planned lease transfer.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;

use meridian_hlc::Timestamp;
use meridian_kvapi::{Request, Response, TxnId};

/// A key span as requests give it: `(start, Some(end))` is `[start, end)`;
/// `(key, None)` is the one key, `[key, key\0)`.
pub type Span<'a> = (&'a [u8], Option<&'a [u8]>);

/// How large a timestamp cache may grow before it evicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsCacheLimits {
    /// Segments.
    pub max_entries: usize,
    /// Key bytes plus a fixed overhead per segment ([`ENTRY_OVERHEAD`]).
    pub max_bytes: usize,
}

impl TsCacheLimits {
    /// 64K segments or 8 MiB per leaseholder, whichever comes first.
    pub const DEFAULT: TsCacheLimits = TsCacheLimits {
        max_entries: 64 * 1024,
        max_bytes: 8 << 20,
    };
}

impl Default for TsCacheLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What a segment costs besides its keys: the two key vectors' headers,
/// the summary, and the map's share of a node.
pub const ENTRY_OVERHEAD: usize = 128;

/// The reads recorded over one segment, summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reads {
    /// The highest timestamp read at.
    max: Timestamp,
    /// The transaction that read at `max`, if exactly one did and no
    /// non-transactional read did.
    txn: Option<TxnId>,
    /// With `txn` set: the highest timestamp anyone else read at (zero if
    /// nobody). Zero otherwise, so equal summaries compare equal and merge.
    others: Timestamp,
}

impl Reads {
    fn new(ts: Timestamp, txn: Option<TxnId>) -> Self {
        Reads {
            max: ts,
            txn,
            others: Timestamp::ZERO,
        }
    }

    /// Adds a read at `ts` by `txn` (`None`: not transactional).
    fn add(&mut self, ts: Timestamp, txn: Option<TxnId>) {
        match ts.cmp(&self.max) {
            Ordering::Greater => {
                // Everything recorded so far becomes "others" unless it was
                // the new reader's own.
                let others = match txn {
                    None => Timestamp::ZERO,
                    Some(_) if self.txn == txn => self.others,
                    Some(_) => self.max,
                };
                *self = Reads {
                    max: ts,
                    txn,
                    others,
                };
            }
            Ordering::Equal => {
                if txn.is_none() || self.txn != txn {
                    *self = Reads::new(ts, None);
                }
            }
            Ordering::Less => {
                if self.txn.is_some() && self.txn != txn {
                    self.others = self.others.max(ts);
                }
            }
        }
    }

    /// The highest read by anyone but `txn` (`None`: by anyone).
    fn max_excluding(&self, txn: Option<TxnId>) -> Timestamp {
        if txn.is_some() && self.txn == txn {
            self.others
        } else {
            self.max
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    end: Vec<u8>,
    reads: Reads,
}

/// The timestamp cache of one leaseholder: see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampCache {
    /// Segments by start key; they never overlap.
    segments: BTreeMap<Vec<u8>, Segment>,
    low_water: Timestamp,
    bytes: usize,
    limits: TsCacheLimits,
}

impl Default for TimestampCache {
    fn default() -> Self {
        TimestampCache::new(Timestamp::ZERO, TsCacheLimits::DEFAULT)
    }
}

impl TimestampCache {
    /// An empty cache: every key reads as `low_water`.
    pub fn new(low_water: Timestamp, limits: TsCacheLimits) -> Self {
        TimestampCache {
            segments: BTreeMap::new(),
            low_water,
            bytes: 0,
            limits,
        }
    }

    /// The floor for every key: no lookup returns less.
    pub fn low_water(&self) -> Timestamp {
        self.low_water
    }

    pub fn limits(&self) -> TsCacheLimits {
        self.limits
    }

    /// How many segments the cache holds.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// What the cache counts against [`TsCacheLimits::max_bytes`].
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The highest timestamp `span` was read at by anyone but `txn` (`None`:
    /// by anyone), and at least the low-water mark.
    pub fn max_over(&self, span: Span<'_>, txn: Option<TxnId>) -> Timestamp {
        let (start, end) = span;
        let mut max = self.low_water;
        if end.is_some_and(|end| start >= end) {
            return max;
        }
        // The segment that starts at or before `start` and may reach into
        // the span, then those starting inside it.
        if let Some((_, segment)) = self
            .segments
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(start)))
            .next_back()
        {
            if segment.end.as_slice() > start {
                max = max.max(segment.reads.max_excluding(txn));
            }
        }
        if let Some(end) = end {
            let inside = self
                .segments
                .range::<[u8], _>((Bound::Excluded(start), Bound::Excluded(end)));
            for (_, segment) in inside {
                max = max.max(segment.reads.max_excluding(txn));
            }
        }
        max
    }

    /// Records a read of `span` at `ts` by `txn` (`None`: not
    /// transactional). A read at or below the low-water mark changes
    /// nothing.
    pub fn record(&mut self, span: Span<'_>, ts: Timestamp, txn: Option<TxnId>) {
        let (start, end) = span;
        let point_end;
        let end = match end {
            Some(end) => end,
            None => {
                point_end = successor(start);
                &point_end
            }
        };
        if start >= end || ts <= self.low_water {
            return;
        }
        let overlapping = self.take_overlapping(start, end);
        let mut pieces: Vec<(Vec<u8>, Segment)> = Vec::with_capacity(overlapping.len() * 2 + 3);
        let mut pos = start.to_vec();
        let fill_to = |pieces: &mut Vec<(Vec<u8>, Segment)>, pos: &mut Vec<u8>, to: &[u8]| {
            if pos.as_slice() < to {
                let gap = Segment {
                    end: to.to_vec(),
                    reads: Reads::new(ts, txn),
                };
                pieces.push((std::mem::replace(pos, to.to_vec()), gap));
            }
        };
        for (seg_start, segment) in overlapping {
            let inner_start = if seg_start.as_slice() < start {
                // The part before the span keeps what it had.
                pieces.push((
                    seg_start,
                    Segment {
                        end: start.to_vec(),
                        reads: segment.reads,
                    },
                ));
                start.to_vec()
            } else {
                seg_start
            };
            fill_to(&mut pieces, &mut pos, &inner_start);
            let inner_end = segment.end.as_slice().min(end).to_vec();
            let mut reads = segment.reads;
            reads.add(ts, txn);
            pieces.push((
                inner_start,
                Segment {
                    end: inner_end.clone(),
                    reads,
                },
            ));
            if segment.end.as_slice() > end {
                // The part after the span keeps what it had.
                pieces.push((end.to_vec(), segment));
            }
            pos = inner_end;
        }
        fill_to(&mut pieces, &mut pos, end);
        self.insert_merged(pieces);
        if self.over(1, 1) {
            self.evict();
        }
    }

    /// Removes and returns the segments overlapping `[start, end)`, in key
    /// order (`start < end`).
    fn take_overlapping(&mut self, start: &[u8], end: &[u8]) -> Vec<(Vec<u8>, Segment)> {
        let mut keys: Vec<Vec<u8>> = Vec::new();
        if let Some((key, segment)) = self
            .segments
            .range::<[u8], _>((Bound::Unbounded, Bound::Excluded(start)))
            .next_back()
        {
            if segment.end.as_slice() > start {
                keys.push(key.clone());
            }
        }
        keys.extend(
            self.segments
                .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
                .map(|(key, _)| key.clone()),
        );
        keys.into_iter()
            .map(|key| {
                let segment = self.remove(&key).expect("listed above");
                (key, segment)
            })
            .collect()
    }

    /// Inserts `pieces` (ordered, adjacent, none overlapping a segment of
    /// the map), merged with each other and with the segments just before
    /// and after them wherever the summaries are equal: a read over many
    /// segments that dominates them all leaves one.
    fn insert_merged(&mut self, mut pieces: Vec<(Vec<u8>, Segment)>) {
        let Some(first) = pieces.first() else { return };
        let before = self
            .segments
            .range::<[u8], _>((Bound::Unbounded, Bound::Excluded(first.0.as_slice())))
            .next_back()
            .filter(|(_, s)| s.end == first.0 && s.reads == first.1.reads)
            .map(|(k, _)| k.clone());
        if let Some(key) = before {
            let segment = self.remove(&key).expect("found above");
            pieces.insert(0, (key, segment));
        }
        let last = pieces.last().expect("not empty");
        if let Some(after) = self.segments.get(&last.1.end) {
            if after.reads == last.1.reads {
                let key = last.1.end.clone();
                let segment = self.remove(&key).expect("found above");
                pieces.push((key, segment));
            }
        }
        let mut merged: Option<(Vec<u8>, Segment)> = None;
        for (start, segment) in pieces {
            merged = Some(match merged {
                Some((m_start, mut m)) if m.end == start && m.reads == segment.reads => {
                    m.end = segment.end;
                    (m_start, m)
                }
                Some((m_start, m)) => {
                    self.insert(m_start, m);
                    (start, segment)
                }
                None => (start, segment),
            });
        }
        if let Some((start, segment)) = merged {
            self.insert(start, segment);
        }
    }

    fn insert(&mut self, start: Vec<u8>, segment: Segment) {
        self.bytes += cost(&start, &segment);
        let replaced = self.segments.insert(start, segment);
        debug_assert!(replaced.is_none(), "segments overlap");
    }

    fn remove(&mut self, start: &[u8]) -> Option<Segment> {
        let segment = self.segments.remove(start)?;
        self.bytes -= cost(start, &segment);
        Some(segment)
    }

    /// Whether the cache holds more than `num / den` of either limit.
    fn over(&self, num: u128, den: u128) -> bool {
        let exceeds = |used: usize, limit: usize| used as u128 * den > limit as u128 * num;
        exceeds(self.segments.len(), self.limits.max_entries)
            || exceeds(self.bytes, self.limits.max_bytes)
    }

    /// Raises the low-water mark over the lowest-timestamp quarter of the
    /// segments and drops every segment it covers, until the cache is back
    /// under three quarters of its limits.
    fn evict(&mut self) {
        while !self.segments.is_empty() && self.over(3, 4) {
            let mut maxes: Vec<Timestamp> = self.segments.values().map(|s| s.reads.max).collect();
            let nth = (maxes.len() / 4).saturating_sub(1);
            let (_, &mut floor, _) = maxes.select_nth_unstable(nth);
            self.low_water = self.low_water.max(floor);
            let low_water = self.low_water;
            self.segments.retain(|_, s| s.reads.max > low_water);
            self.bytes = self.segments.iter().map(|(k, s)| cost(k, s)).sum();
        }
    }
}

fn cost(start: &[u8], segment: &Segment) -> usize {
    start.len() + segment.end.len() + ENTRY_OVERHEAD
}

/// The first key after `key`: `key\0`.
fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

/// The span `request` read, given its `response` if it was served (`None`:
/// it failed, or the batch did; the whole span then counts). Gets and
/// conditional puts read their key; scans what they scanned (up to the
/// resume key when a row limit stopped them); a delete-range read its whole
/// span to find what to delete. Blind writes read nothing.
pub fn read_span<'a>(request: &'a Request, response: Option<&'a Response>) -> Option<Span<'a>> {
    let resume = match response {
        Some(Response::Scan {
            resume_key: Some(resume),
            ..
        }) => Some(resume.as_slice()),
        _ => None,
    };
    match request {
        // An intent query reads the key as no transaction: a write of the
        // transaction it asks about must then land above it.
        Request::Get { key }
        | Request::GetForUpdate { key }
        | Request::ConditionalPut { key, .. }
        | Request::QueryIntent { key, .. } => Some((key.as_slice(), None)),
        Request::Scan { start, end, .. } => Some((start.as_slice(), Some(resume.unwrap_or(end)))),
        Request::ReverseScan { start, end, .. } => {
            Some((resume.unwrap_or(start), Some(end.as_slice())))
        }
        Request::DeleteRange { start, end } => Some((start.as_slice(), Some(end.as_slice()))),
        // Blind writes read nothing; transaction records are not MVCC data,
        // and resolving an intent only applies an outcome already decided.
        Request::Put { .. }
        | Request::Delete { .. }
        | Request::HeartbeatTxn { .. }
        | Request::EndTxn { .. }
        | Request::QueryTxn { .. }
        | Request::PushTxn { .. }
        | Request::RecoverTxn { .. }
        | Request::ResolveIntent { .. } => None,
    }
}

/// The span `request` writes at the batch's timestamp, if it does: MVCC
/// writes only. A transaction record is not versioned, and a resolved
/// intent lands at its transaction's timestamp, whatever was read since.
pub fn write_span(request: &Request) -> Option<Span<'_>> {
    match request {
        Request::Put { .. }
        | Request::ConditionalPut { .. }
        | Request::Delete { .. }
        | Request::DeleteRange { .. } => Some(request.span()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
