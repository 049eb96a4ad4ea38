//! Hybrid logical clocks.
//!
//! Every Meridian node stamps what it does with a [`Timestamp`]: a physical
//! part (`wall_nanos`, nanoseconds since the Unix epoch) and a logical counter
//! that orders events sharing one physical reading. A [`HybridClock`] keeps the
//! node's latest timestamp and guarantees:
//!
//! 1. **Monotonicity.** Every call to [`HybridClock::now`] returns a timestamp
//!    strictly greater than every timestamp the clock returned or observed
//!    before, even when called from many threads and even when the physical
//!    clock steps backwards.
//! 2. **Causality.** [`HybridClock::update`] with a timestamp received from
//!    another node moves the clock past it, so whatever this node does next is
//!    ordered after what the sender did.
//! 3. **Bounded offset.** A remote timestamp more than `max_offset` ahead of
//!    our own physical clock is refused with [`ClockOffsetError`] and does not
//!    move the clock. The transaction layer relies on every clock being within
//!    `max_offset` of the others: reads treat values in
//!    `(read_ts, read_ts + max_offset]` as uncertain, and leases expire
//!    `max_offset` early.
//!
//! The physical source is injected ([`PhysicalClock`]): [`SystemClock`] in a
//! node, [`ManualClock`] in tests that need to control time or skew it.
//!
//! What this crate does not own: the uncertainty rules and lease validity
//! built on the offset bound live in the layers that use them.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// The default bound on clock offset between any two nodes.
pub const DEFAULT_MAX_OFFSET: Duration = Duration::from_millis(500);

/// A point in hybrid logical time. Ordered by `wall_nanos`, then `logical`.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp {
    /// Nanoseconds since the Unix epoch, as read from (or pushed past) a
    /// physical clock.
    pub wall_nanos: u64,
    /// Orders events with the same `wall_nanos`.
    pub logical: u32,
}

impl Timestamp {
    /// The zero timestamp: before everything.
    pub const ZERO: Timestamp = Timestamp {
        wall_nanos: 0,
        logical: 0,
    };
    /// The largest timestamp: after everything. Reads at `MAX` see the latest
    /// version of every key.
    pub const MAX: Timestamp = Timestamp {
        wall_nanos: u64::MAX,
        logical: u32::MAX,
    };

    pub const fn new(wall_nanos: u64, logical: u32) -> Self {
        Timestamp {
            wall_nanos,
            logical,
        }
    }

    pub const fn is_zero(&self) -> bool {
        self.wall_nanos == 0 && self.logical == 0
    }

    /// The smallest timestamp greater than `self` (saturating at `MAX`).
    pub fn next(self) -> Self {
        match self.logical.checked_add(1) {
            Some(logical) => Timestamp::new(self.wall_nanos, logical),
            None if self.wall_nanos == u64::MAX => Timestamp::MAX,
            None => Timestamp::new(self.wall_nanos + 1, 0),
        }
    }

    /// The largest timestamp smaller than `self` (saturating at `ZERO`).
    pub fn prev(self) -> Self {
        match self.logical.checked_sub(1) {
            Some(logical) => Timestamp::new(self.wall_nanos, logical),
            None if self.wall_nanos == 0 => Timestamp::ZERO,
            None => Timestamp::new(self.wall_nanos - 1, u32::MAX),
        }
    }

    /// This timestamp moved forward by `d` of wall time, logical reset to zero
    /// when the wall time changes. Saturates at `MAX`.
    pub fn add_duration(self, d: Duration) -> Self {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return self;
        }
        match self.wall_nanos.checked_add(nanos) {
            Some(wall) => Timestamp::new(wall, 0),
            None => Timestamp::MAX,
        }
    }

    /// This timestamp moved back by `d` of wall time (saturating at `ZERO`).
    pub fn sub_duration(self, d: Duration) -> Self {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Timestamp::new(self.wall_nanos.saturating_sub(nanos), self.logical)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Timestamp {
    /// `seconds.nanoseconds,logical`, the form CockroachDB prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09},{}",
            self.wall_nanos / 1_000_000_000,
            self.wall_nanos % 1_000_000_000,
            self.logical
        )
    }
}

/// A source of physical time in nanoseconds since the Unix epoch.
pub trait PhysicalClock: Send + Sync + fmt::Debug {
    fn now_nanos(&self) -> u64;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl PhysicalClock for SystemClock {
    fn now_nanos(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A physical clock that moves only when told to. Shared by cloning the
/// `Arc` it is usually wrapped in.
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    pub fn new(nanos: u64) -> Self {
        ManualClock {
            nanos: AtomicU64::new(nanos),
        }
    }

    pub fn set(&self, nanos: u64) {
        self.nanos.store(nanos, Ordering::SeqCst);
    }

    pub fn advance(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl PhysicalClock for ManualClock {
    fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst)
    }
}

/// A physical clock shifted by a fixed, changeable offset from another one.
/// Tests use it to skew one node's clock against the rest of a cluster.
#[derive(Debug)]
pub struct SkewedClock {
    base: Arc<dyn PhysicalClock>,
    skew_nanos: std::sync::atomic::AtomicI64,
}

impl SkewedClock {
    pub fn new(base: Arc<dyn PhysicalClock>) -> Self {
        SkewedClock {
            base,
            skew_nanos: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// Sets the skew: positive runs ahead of the base clock, negative behind.
    pub fn set_skew_nanos(&self, skew: i64) {
        self.skew_nanos.store(skew, Ordering::SeqCst);
    }
}

impl PhysicalClock for SkewedClock {
    fn now_nanos(&self) -> u64 {
        let base = self.base.now_nanos();
        let skew = self.skew_nanos.load(Ordering::SeqCst);
        base.saturating_add_signed(skew)
    }
}

/// A remote timestamp was further ahead of our physical clock than the
/// cluster's `max_offset` allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "remote timestamp {remote} is {ahead:?} ahead of local physical time {local}, beyond max offset {max_offset:?}"
)]
pub struct ClockOffsetError {
    pub remote: Timestamp,
    pub local: Timestamp,
    pub ahead: Duration,
    pub max_offset: Duration,
}

/// A hybrid logical clock over an injected physical clock. Cheap to share
/// behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct HybridClock {
    physical: Arc<dyn PhysicalClock>,
    max_offset: Duration,
    latest: Mutex<Timestamp>,
}

impl HybridClock {
    pub fn new(physical: Arc<dyn PhysicalClock>, max_offset: Duration) -> Self {
        HybridClock {
            physical,
            max_offset,
            latest: Mutex::new(Timestamp::ZERO),
        }
    }

    /// A clock over the system wall clock with the default max offset.
    pub fn system() -> Self {
        HybridClock::new(Arc::new(SystemClock), DEFAULT_MAX_OFFSET)
    }

    /// The bound on clock offset this clock enforces.
    pub fn max_offset(&self) -> Duration {
        self.max_offset
    }

    /// The physical clock's reading, without touching the logical state.
    pub fn physical_now(&self) -> u64 {
        self.physical.now_nanos()
    }

    /// A new timestamp, strictly greater than every timestamp this clock has
    /// returned or been updated with.
    pub fn now(&self) -> Timestamp {
        let physical = self.physical.now_nanos();
        let mut latest = self.latest.lock();
        *latest = if physical > latest.wall_nanos {
            Timestamp::new(physical, 0)
        } else {
            latest.next()
        };
        *latest
    }

    /// The clock's latest timestamp, without advancing it.
    pub fn latest(&self) -> Timestamp {
        let physical = self.physical.now_nanos();
        let latest = *self.latest.lock();
        latest.max(Timestamp::new(physical, 0))
    }

    /// Takes a timestamp observed from another node into account. On success
    /// returns a new timestamp greater than both `remote` and everything this
    /// clock returned before. A `remote` more than `max_offset` ahead of the
    /// local physical clock is refused and leaves the clock unchanged.
    pub fn update(&self, remote: Timestamp) -> Result<Timestamp, ClockOffsetError> {
        let physical = self.physical.now_nanos();
        let ahead_nanos = remote.wall_nanos.saturating_sub(physical);
        let ahead = Duration::from_nanos(ahead_nanos);
        if ahead > self.max_offset {
            return Err(ClockOffsetError {
                remote,
                local: Timestamp::new(physical, 0),
                ahead,
                max_offset: self.max_offset,
            });
        }
        let mut latest = self.latest.lock();
        let floor = (*latest).max(remote);
        *latest = if physical > floor.wall_nanos {
            Timestamp::new(physical, 0)
        } else {
            floor.next()
        };
        Ok(*latest)
    }

    /// Moves the clock forward to at least `ts` without checking the offset.
    /// Used for timestamps this node chose itself (for example a future
    /// timestamp of a GLOBAL table write it coordinated).
    pub fn forward_to(&self, ts: Timestamp) {
        let mut latest = self.latest.lock();
        if ts > *latest {
            *latest = ts;
        }
    }
}

#[cfg(test)]
mod tests;
