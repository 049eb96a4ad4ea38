//! Raw cursors over the data column family, and the merge of a batch's
//! pending writes over the engine.
//!
//! MVCC logic reads only through the [`Reader`] and [`Cursor`] traits, so the
//! same code reads a committed engine or an engine plus an uncommitted batch.
//! This module knows nothing about MVCC encodings.

use std::collections::BTreeMap;
use std::ops::Bound;

use rocksdb::{DBRawIteratorWithThreadMode, DB};

use crate::error::Result;

/// Something MVCC can read from: the engine, or a batch over it.
pub trait Reader {
    /// A cursor over raw data-CF entries within `[lower, upper)`.
    fn cursor(&self, lower: Option<&[u8]>, upper: Option<&[u8]>) -> Box<dyn Cursor + '_>;

    /// A cursor over the records of one user key: `prefix` is its encoded
    /// intent key and `upper` the end of its records. Cheaper than
    /// [`Reader::cursor`]: files without the key are skipped by their bloom
    /// filters.
    fn key_cursor(&self, prefix: &[u8], upper: &[u8]) -> Box<dyn Cursor + '_>;
}

/// A bidirectional cursor over raw key/value pairs.
pub trait Cursor {
    /// Positions at the first entry `>= key`.
    fn seek(&mut self, key: &[u8]);
    /// Positions at the last entry `<= key`.
    fn seek_for_prev(&mut self, key: &[u8]);
    fn next(&mut self);
    fn prev(&mut self);
    fn valid(&self) -> bool;
    /// The current key; only meaningful while `valid()`.
    fn key(&self) -> &[u8];
    /// The current value; only meaningful while `valid()`.
    fn value(&self) -> &[u8];
    /// An I/O or corruption error the cursor met, if any. A cursor that
    /// turned invalid because of an error reports it here.
    fn status(&self) -> Result<()>;
}

/// A cursor over one RocksDB column family.
pub struct DbCursor<'a> {
    iter: DBRawIteratorWithThreadMode<'a, DB>,
}

impl<'a> DbCursor<'a> {
    pub(crate) fn new(iter: DBRawIteratorWithThreadMode<'a, DB>) -> Self {
        DbCursor { iter }
    }
}

impl Cursor for DbCursor<'_> {
    fn seek(&mut self, key: &[u8]) {
        self.iter.seek(key);
    }
    fn seek_for_prev(&mut self, key: &[u8]) {
        self.iter.seek_for_prev(key);
    }
    fn next(&mut self) {
        self.iter.next();
    }
    fn prev(&mut self) {
        self.iter.prev();
    }
    fn valid(&self) -> bool {
        self.iter.valid()
    }
    fn key(&self) -> &[u8] {
        self.iter.key().unwrap_or_default()
    }
    fn value(&self) -> &[u8] {
        self.iter.value().unwrap_or_default()
    }
    fn status(&self) -> Result<()> {
        Ok(self.iter.status()?)
    }
}

type Overlay = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Db,
    Overlay,
    Exhausted,
}

/// The engine's entries with a batch's pending writes laid over them: an
/// overlay entry hides the engine entry with the same key, and an overlay
/// deletion hides it entirely.
pub(crate) struct MergedCursor<'a> {
    db: DbCursor<'a>,
    overlay: &'a Overlay,
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    /// The overlay entry the merge currently considers.
    ov: Option<(&'a Vec<u8>, &'a Option<Vec<u8>>)>,
    forward: bool,
    side: Side,
}

impl<'a> MergedCursor<'a> {
    pub(crate) fn new(
        db: DbCursor<'a>,
        overlay: &'a Overlay,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
    ) -> Self {
        MergedCursor {
            db,
            overlay,
            lower: lower.map(<[u8]>::to_vec),
            upper: upper.map(<[u8]>::to_vec),
            ov: None,
            forward: true,
            side: Side::Exhausted,
        }
    }

    fn in_bounds(&self, key: &[u8]) -> bool {
        self.lower.as_deref().is_none_or(|l| key >= l)
            && self.upper.as_deref().is_none_or(|u| key < u)
    }

    fn overlay_from(&self, bound: Bound<&[u8]>) -> Option<(&'a Vec<u8>, &'a Option<Vec<u8>>)> {
        let overlay: &'a Overlay = self.overlay;
        overlay
            .range::<[u8], _>((bound, Bound::Unbounded))
            .next()
            .filter(|(k, _)| self.in_bounds(k))
    }

    fn overlay_until(&self, bound: Bound<&[u8]>) -> Option<(&'a Vec<u8>, &'a Option<Vec<u8>>)> {
        let overlay: &'a Overlay = self.overlay;
        overlay
            .range::<[u8], _>((Bound::Unbounded, bound))
            .next_back()
            .filter(|(k, _)| self.in_bounds(k))
    }

    /// Picks the side holding the smallest (forward) or largest (backward)
    /// key, skipping overlay deletions and the engine entries they hide.
    fn settle(&mut self) {
        loop {
            let db_key = self.db.valid().then(|| self.db.key());
            let ov = self.ov;
            let (Some(db_key), Some((ov_key, ov_value))) = (db_key, ov) else {
                self.side = match (self.db.valid(), ov) {
                    (_, Some((k, None))) => {
                        self.ov = if self.forward {
                            self.overlay_from(Bound::Excluded(k))
                        } else {
                            self.overlay_until(Bound::Excluded(k))
                        };
                        continue;
                    }
                    (_, Some(_)) => Side::Overlay,
                    (true, None) => Side::Db,
                    (false, None) => Side::Exhausted,
                };
                return;
            };
            let ordering = db_key.cmp(ov_key.as_slice());
            let overlay_first = if self.forward {
                ordering.is_ge()
            } else {
                ordering.is_le()
            };
            if !overlay_first {
                self.side = Side::Db;
                return;
            }
            if ov_value.is_some() {
                self.side = Side::Overlay;
                return;
            }
            // A deletion: skip it and, if it hides the engine entry, that too.
            if ordering.is_eq() {
                self.step_db();
            }
            self.ov = self.step_overlay_from(ov_key);
        }
    }

    fn step_db(&mut self) {
        if self.forward {
            self.db.next()
        } else {
            self.db.prev()
        }
    }

    fn step_overlay_from(&self, key: &[u8]) -> Option<(&'a Vec<u8>, &'a Option<Vec<u8>>)> {
        if self.forward {
            self.overlay_from(Bound::Excluded(key))
        } else {
            self.overlay_until(Bound::Excluded(key))
        }
    }

    /// Re-positions both sides at the current key when the direction flips.
    fn turn(&mut self, forward: bool) {
        if self.forward == forward || self.side == Side::Exhausted {
            self.forward = forward;
            return;
        }
        let key = self.key().to_vec();
        if forward {
            self.seek(&key);
        } else {
            self.seek_for_prev(&key);
        }
    }

    fn advance(&mut self) {
        match self.side {
            Side::Exhausted => {}
            Side::Db => {
                self.step_db();
                self.settle();
            }
            Side::Overlay => {
                let (key, _) = self.ov.expect("overlay side has an entry");
                if self.db.valid() && self.db.key() == key.as_slice() {
                    self.step_db();
                }
                self.ov = self.step_overlay_from(key);
                self.settle();
            }
        }
    }
}

impl Cursor for MergedCursor<'_> {
    fn seek(&mut self, key: &[u8]) {
        self.forward = true;
        self.db.seek(key);
        let start = match self.lower.as_deref() {
            Some(lower) if lower > key => lower.to_vec(),
            _ => key.to_vec(),
        };
        self.ov = self.overlay_from(Bound::Included(&start));
        self.settle();
    }

    fn seek_for_prev(&mut self, key: &[u8]) {
        self.forward = false;
        self.db.seek_for_prev(key);
        // Clamp to the exclusive upper bound, or an overlay entry at or
        // above it would hide every entry below.
        let bound = match self.upper.clone() {
            Some(upper) if key >= upper.as_slice() => {
                self.ov = self.overlay_until(Bound::Excluded(&upper));
                self.settle();
                return;
            }
            _ => Bound::Included(key),
        };
        self.ov = self.overlay_until(bound);
        self.settle();
    }

    fn next(&mut self) {
        self.turn(true);
        self.advance();
    }

    fn prev(&mut self) {
        self.turn(false);
        self.advance();
    }

    fn valid(&self) -> bool {
        self.side != Side::Exhausted
    }

    fn key(&self) -> &[u8] {
        match (self.side, self.ov) {
            (Side::Db, _) => self.db.key(),
            (Side::Overlay, Some((k, _))) => k,
            _ => &[],
        }
    }

    fn value(&self) -> &[u8] {
        match (self.side, self.ov) {
            (Side::Db, _) => self.db.value(),
            (Side::Overlay, Some((_, Some(v)))) => v,
            _ => &[],
        }
    }

    fn status(&self) -> Result<()> {
        self.db.status()
    }
}
