//! Closed timestamps: a leaseholder's promise that no write of its range
//! will ever land at or below a timestamp, so any replica that applied the
//! log far enough serves reads there without the lease (follower reads).
//!
//! ## The rule
//!
//! Every [`CLOSE_INTERVAL`] each leaseholder closes `now - target` (the
//! target lag, [`DEFAULT_TARGET`] unless set with
//! [`crate::store::Store::set_closed_timestamp_target`]):
//! 1. under the lease's lock it raises the closing floor ([`Closer`]) to
//!    that timestamp; from then on every write of the lease goes above it,
//!    exactly as above a read in the timestamp cache (a closed timestamp is
//!    a read of the whole range by nobody in particular: a one-phase commit
//!    below it is refused with `WriteTooOld`, a transaction's intents move
//!    above it and the coordinator refreshes);
//! 2. what it publishes is the floor, or just below the lowest write that
//!    chose its timestamp before the floor rose and is not applied yet;
//! 3. with it goes the index the leaseholder has applied, read after step
//!    2: every write at or below the published timestamp is applied at or
//!    below that index.
//!
//! The pair `(closed, index)` goes to the range's other replicas on a side
//! channel ([`ClosedTimestampsRpc`], one message per peer node per
//! interval for all the ranges it leads), so idle ranges close too. A
//! replica that applied `index` serves reads at or below `closed`
//! ([`FollowerClosed`]); it keeps the highest pair it could use.
//!
//! Why a published pair stays true for ever, whoever leads later: it is
//! published only under a valid lease (the closer checks the lease first,
//! and the lease must cover the closed timestamp); every later lease starts
//! above this lease's expiration, so above every timestamp it closed, and
//! a range made by a split starts its leases above the parent
//! leaseholder's clock. A write evaluated under this lease but appended in
//! a later term is skipped by every replica (see `crate::raft`), and one
//! whose proposal ended ambiguous stops this lease from closing anything
//! more ([`Closer::poison`]): it may still apply later, under another
//! leader, below the next timestamp this lease would close. A planned
//! lease transfer is the one way a new lease can start before the old one
//! expires: a range closed ahead of the present first stops closing and
//! raises the range's lease floor to what it closed
//! (`Replica::hand_over_closed`).
//!
//! A range whose zone config asks for global reads (a GLOBAL table's)
//! closes ahead of the present instead, by [`global_reads_lead`]: its
//! writes land in the future and wait until the clock passes them before
//! they are acknowledged, and every replica serves reads at the present
//! time, so readers in every region read locally.
//!
//! A quiesced leader holds no lease (its heartbeats stopped), so every
//! [`QUIESCED_CLOSE_EVERY`] intervals it renews it with one heartbeat round,
//! without waking the group, and closes then: an idle range costs one round
//! a second instead of a heartbeat per interval.
//!
//! This module owns the leaseholder's bookkeeping ([`Closer`], kept in the
//! lease's state), a replica's view of what is closed ([`FollowerClosed`]),
//! the side channel and the loop that closes. It does not own where writes
//! go ([`crate::lease`]) nor how a follower read is served
//! (`crate::replica`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use meridian_hlc::Timestamp;
use meridian_kvapi::{KvError, NodeId, RangeId, TxnId};
use meridian_transport::Rpc;
use openraft::ReadPolicy;
use serde::{Deserialize, Serialize};

use crate::raft::types::RaftCommand;
use crate::replica::Replica;
use crate::store::Store;

/// How far behind the present a leaseholder closes, unless set otherwise
/// (CockroachDB's `kv.closed_timestamp.target_duration`).
pub const DEFAULT_TARGET: Duration = Duration::from_secs(3);
/// How often leaseholders close and tell the other replicas.
pub const CLOSE_INTERVAL: Duration = Duration::from_millis(200);
/// A quiesced leader closes every this many intervals (each costs it a
/// heartbeat round).
pub const QUIESCED_CLOSE_EVERY: u64 = 5;
/// How many ranges one pass closes at once (a quiesced one waits for a
/// round trip).
const CONCURRENT_CLOSES: usize = 64;
/// How long a side-channel message may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// Added to a global-reads lead for what the formula leaves out
/// (scheduling, the time to apply).
pub const GLOBAL_READS_SLACK: Duration = Duration::from_millis(20);

/// How far ahead of the present the leaseholder of a range with global
/// reads closes, so that every replica can serve a read at its own present
/// time: a reader's uncertainty interval reaches `max_offset` ahead, and
/// what a replica knows to be closed was published up to one close
/// interval plus a one-way trip (half the round trip to the farthest
/// replica) ago; plus [`GLOBAL_READS_SLACK`]. CockroachDB's formula, with
/// the measured round trip where it assumes a fixed one. Writes go above
/// what is closed, so this is also about how long a write to such a range
/// waits before it is acknowledged.
pub fn global_reads_lead(max_offset: Duration, farthest_round_trip: Duration) -> Duration {
    max_offset + farthest_round_trip / 2 + CLOSE_INTERVAL + GLOBAL_READS_SLACK
}

/// The closing side of one lease: the floor its writes go above, the
/// writes that chose a timestamp and are not applied yet, and whether a
/// proposal of this lease ended ambiguous.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Closer {
    floor: Timestamp,
    in_flight: BTreeMap<Timestamp, usize>,
    /// Timestamps held for transactions whose one-phase commit the floor
    /// refused ([`Closer::reserve`]), until when.
    reserved: BTreeMap<TxnId, (Timestamp, Instant)>,
    poisoned: bool,
}

/// How long a reservation ([`Closer::reserve`]) holds what is closed.
pub const RESERVATION: Duration = Duration::from_secs(1);

impl Closer {
    /// Writes of this lease go above this.
    pub fn floor(&self) -> Timestamp {
        self.floor
    }

    /// What a write of `txn` at `requested` must be above: the floor, or,
    /// for a transaction coming back at or above the timestamp reserved for
    /// it, just below that timestamp (nothing at or above it was closed
    /// since: see [`Closer::reserve`]).
    pub fn floor_for(&self, txn: Option<TxnId>, requested: Timestamp) -> Timestamp {
        match txn.and_then(|t| self.reserved.get(&t)) {
            Some(&(at, until)) if requested >= at && Instant::now() < until => {
                self.floor.min(at.prev())
            }
            _ => self.floor,
        }
    }

    /// Holds `at` for `txn`, whose one-phase commit the floor refused: the
    /// transaction refreshes its reads at `at` and sends the commit again,
    /// and meanwhile the floor moves on (ahead of the present, by a close
    /// interval each time). Until it comes back, or for [`RESERVATION`],
    /// nothing at or above `at` is closed, so it can land there instead of
    /// chasing the floor.
    pub fn reserve(&mut self, txn: TxnId, at: Timestamp) {
        self.reserved
            .insert(txn, (at, Instant::now() + RESERVATION));
    }

    /// `txn` came back (its write is in flight now, or it gave up).
    pub fn release_reservation(&mut self, txn: TxnId) {
        self.reserved.remove(&txn);
    }

    /// A write chose `ts` and is about to be proposed.
    pub fn register(&mut self, ts: Timestamp) {
        *self.in_flight.entry(ts).or_default() += 1;
    }

    /// The write registered at `ts` was applied, or will never be.
    pub fn release(&mut self, ts: Timestamp) {
        if let Some(count) = self.in_flight.get_mut(&ts) {
            *count -= 1;
            if *count == 0 {
                self.in_flight.remove(&ts);
            }
        }
    }

    /// A proposal of this lease ended ambiguous (it may apply later,
    /// under another leader), or the lease is being handed over: nothing
    /// more is closed under this lease.
    pub fn poison(&mut self) {
        self.poisoned = true;
    }

    /// Raises the floor to `target` (never lowers it) and answers what is
    /// closed now: the floor, or just below the lowest write in flight if
    /// that is lower. `None` once poisoned.
    pub fn close(&mut self, target: Timestamp) -> Option<Timestamp> {
        if self.poisoned {
            return None;
        }
        self.floor = self.floor.max(target);
        let now = Instant::now();
        self.reserved.retain(|_, (_, until)| *until > now);
        let lowest = self
            .in_flight
            .keys()
            .copied()
            .chain(self.reserved.values().map(|(at, _)| *at))
            .min();
        let closed = match lowest {
            Some(lowest) if lowest <= self.floor => lowest.prev(),
            _ => self.floor,
        };
        Some(closed)
    }
}

/// What a leaseholder closed: every write of the range at or below
/// `closed` is applied at or below `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedUpdate {
    pub range_id: RangeId,
    pub closed: Timestamp,
    pub index: u64,
}

/// A replica's view of what is closed: the highest timestamp it may
/// serve reads at, given what it applied, and a newer pair waiting for its
/// index.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FollowerClosed {
    usable: Timestamp,
    pending: Option<(Timestamp, u64)>,
}

impl FollowerClosed {
    /// Takes in a pair published by a leaseholder, with `applied` this
    /// replica's applied index.
    pub fn record(&mut self, closed: Timestamp, index: u64, applied: u64) {
        self.promote(applied);
        if closed <= self.usable {
            return;
        }
        if index <= applied {
            self.usable = closed;
        } else if self.pending.is_none_or(|(pending, _)| closed > pending) {
            // A newer pair replaces an older one still waiting: its index
            // is at least as high, so this only delays the older one.
            self.pending = Some((closed, index));
        }
    }

    /// The highest timestamp reads may be served at, given `applied`.
    pub fn usable(&mut self, applied: u64) -> Timestamp {
        self.promote(applied);
        self.usable
    }

    fn promote(&mut self, applied: u64) {
        if let Some((closed, index)) = self.pending {
            if index <= applied {
                self.usable = self.usable.max(closed);
                self.pending = None;
            }
        }
    }
}

/// The side channel: what the sending node closed on ranges the receiving
/// node holds replicas of.
pub struct ClosedTimestampsRpc;
impl Rpc for ClosedTimestampsRpc {
    const KIND: u16 = meridian_kvapi::wire::kinds::CLOSED_TIMESTAMPS;
    const NAME: &'static str = "ClosedTimestamps";
    const IDEMPOTENT: bool = true;
    type Request = Vec<ClosedUpdate>;
    type Response = ();
}

impl Replica {
    /// Closes a timestamp `target_lag` behind the clock if this replica
    /// holds the lease (renewing a quiesced leader's lease with one
    /// heartbeat round first); `None` if it cannot.
    pub(crate) async fn close_timestamp(&self, target_lag: Duration) -> Option<ClosedUpdate> {
        if self.is_quiesced() {
            // Renews openraft's leader lease without restarting timers.
            self.raft
                .ensure_linearizable(ReadPolicy::ReadIndex)
                .await
                .ok()?;
        }
        let lease = self.lease(false).await.ok()?;
        let now = self.clock.now();
        let target = if self.has_global_reads() {
            now.add_duration(self.global_reads_lead())
        } else {
            now.sub_duration(target_lag)
        };
        let target = target.min(lease.expiration.prev());
        let update = {
            let mut state = self.lease_state.lock();
            if state.term != lease.term {
                return None;
            }
            let closed = state.closer.close(target)?;
            // Read after the lowest write in flight: everything at or below
            // `closed` finished applying before this.
            let index = self.applied_index();
            ClosedUpdate {
                range_id: self.range_id,
                closed,
                index,
            }
        };
        self.record_closed(update.closed, update.index);
        Some(update)
    }

    /// Whether the range's zone config asks for global reads (set by the
    /// node's queues from the config; only the leaseholder's setting acts).
    pub fn has_global_reads(&self) -> bool {
        self.global_reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn set_global_reads(&self, global: bool) {
        self.global_reads
            .store(global, std::sync::atomic::Ordering::Relaxed);
    }

    /// How far ahead of its clock the leaseholder of a range with global
    /// reads closes: see [`global_reads_lead`], with the round trip to the
    /// farthest other replica as measured now.
    pub fn global_reads_lead(&self) -> Duration {
        let farthest = self
            .descriptor()
            .replicas
            .iter()
            .filter(|r| r.node_id != self.node_id)
            .filter_map(|r| self.transport.round_trip(r.node_id))
            .max()
            .unwrap_or_default();
        global_reads_lead(self.clock.max_offset(), farthest)
    }

    /// Takes in a pair a leaseholder published.
    pub(crate) fn record_closed(&self, closed: Timestamp, index: u64) {
        let applied = self.applied_index();
        self.closed.lock().record(closed, index, applied);
    }

    /// The highest timestamp this replica may serve reads at without the
    /// lease. Zero when nothing is closed here yet.
    pub fn closed_timestamp(&self) -> Timestamp {
        let applied = self.applied_index();
        self.closed.lock().usable(applied)
    }

    /// Before this leaseholder hands its lease to another replica: a lease
    /// normally starts `max_offset` above its holder's clock, which covers
    /// everything closed behind the present, but not what a range with
    /// global reads closed ahead of it. So if the floor is in the future,
    /// closing stops for the rest of this lease (the new leader may win at
    /// any moment after the transfer starts, even if it reports failure)
    /// and the range's lease floor is raised to it through Raft, which
    /// every later lease starts above.
    pub(crate) async fn hand_over_closed(&self) -> Result<(), KvError> {
        let floor = {
            let mut state = self.lease_state.lock();
            let floor = state.closer.floor();
            if floor <= self.clock.now() {
                return Ok(());
            }
            state.closer.poison();
            floor
        };
        self.propose(RaftCommand::LeaseFloor { floor }).await
    }

    /// A proposal of the lease of `term` ended ambiguous: see
    /// [`Closer::poison`].
    pub(crate) fn stop_closing(&self, term: u64) {
        let mut state = self.lease_state.lock();
        if state.term == term {
            state.closer.poison();
        }
    }
}

/// A write between choosing its timestamp and being applied (or failing):
/// while it lives, the lease closes nothing at or above its timestamp.
pub(crate) struct InFlightWrite<'a> {
    pub(crate) replica: &'a Replica,
    pub(crate) term: u64,
    pub(crate) ts: Timestamp,
}

impl Drop for InFlightWrite<'_> {
    fn drop(&mut self) {
        let mut state = self.replica.lease_state.lock();
        if state.term == self.term {
            state.closer.release(self.ts);
        }
    }
}

/// Closes the ranges this node leads every [`CLOSE_INTERVAL`] and tells
/// the nodes holding their other replicas, until the store stops.
pub(crate) async fn run(store: Store) {
    let me = store.node_id();
    let mut ticker = tokio::time::interval(CLOSE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick: u64 = 0;
    loop {
        ticker.tick().await;
        if store.is_stopped() {
            return;
        }
        tick += 1;
        let lag = store.closed_timestamp_target();
        let led: Vec<Arc<Replica>> = store
            .replicas()
            .into_iter()
            .filter(|r| r.leader() == Some(me))
            .filter(|r| !r.is_quiesced() || tick.is_multiple_of(QUIESCED_CLOSE_EVERY))
            .collect();
        let closed: Vec<(ClosedUpdate, Vec<NodeId>)> =
            futures_util::stream::iter(led.into_iter().map(|replica| async move {
                let update = replica.close_timestamp(lag).await?;
                let others = replica
                    .descriptor()
                    .replicas
                    .iter()
                    .map(|r| r.node_id)
                    .filter(|&n| n != me)
                    .collect();
                Some((update, others))
            }))
            .buffer_unordered(CONCURRENT_CLOSES)
            .filter_map(|closed| async move { closed })
            .collect()
            .await;
        let mut by_node: HashMap<NodeId, Vec<ClosedUpdate>> = HashMap::new();
        for (update, others) in &closed {
            for &node in others {
                by_node.entry(node).or_default().push(*update);
            }
        }
        let transport = store.transport();
        futures_util::future::join_all(by_node.into_iter().map(|(node, updates)| async move {
            let _ = transport
                .call::<ClosedTimestampsRpc>(node, &updates, SEND_TIMEOUT)
                .await;
        }))
        .await;
    }
}

impl Store {
    /// Takes in the pairs another node's leaseholders published.
    pub(crate) fn receive_closed_timestamps(&self, updates: Vec<ClosedUpdate>) {
        for update in updates {
            if let Some(replica) = self.replica(update.range_id) {
                replica.record_closed(update.closed, update.index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(n: u64) -> Timestamp {
        Timestamp::new(n, 0)
    }

    #[test]
    fn a_write_in_flight_holds_the_closed_timestamp_below_it() {
        let mut closer = Closer::default();
        closer.register(ts(10));
        assert_eq!(closer.close(ts(20)), Some(ts(10).prev()));
        assert_eq!(closer.floor(), ts(20));
        closer.release(ts(10));
        assert_eq!(closer.close(ts(15)), Some(ts(20)), "the floor never drops");
        closer.register(ts(30));
        assert_eq!(
            closer.close(ts(25)),
            Some(ts(25)),
            "a write above does not hold it"
        );
    }

    #[test]
    fn two_writes_at_one_timestamp_both_hold_it() {
        let mut closer = Closer::default();
        closer.register(ts(10));
        closer.register(ts(10));
        closer.release(ts(10));
        assert_eq!(closer.close(ts(20)), Some(ts(10).prev()));
        closer.release(ts(10));
        assert_eq!(closer.close(ts(20)), Some(ts(20)));
    }

    #[test]
    fn a_reservation_holds_what_is_closed_until_its_transaction_comes_back() {
        let mut closer = Closer::default();
        let txn = TxnId(7);
        assert_eq!(closer.close(ts(20)), Some(ts(20)));
        closer.reserve(txn, ts(21));
        // The floor moves on, what is closed stays below the reservation.
        assert_eq!(closer.close(ts(40)), Some(ts(21).prev()));
        assert_eq!(closer.floor_for(Some(txn), ts(21)), ts(21).prev());
        assert_eq!(closer.floor_for(Some(TxnId(8)), ts(21)), ts(40));
        assert_eq!(closer.floor_for(Some(txn), ts(19)), ts(40));
        closer.release_reservation(txn);
        assert_eq!(closer.close(ts(40)), Some(ts(40)));
        assert_eq!(closer.floor_for(Some(txn), ts(21)), ts(40));
    }

    #[test]
    fn a_poisoned_lease_closes_nothing_more() {
        let mut closer = Closer::default();
        assert_eq!(closer.close(ts(5)), Some(ts(5)));
        closer.poison();
        assert_eq!(closer.close(ts(20)), None);
    }

    #[test]
    fn a_follower_uses_a_pair_only_once_it_applied_its_index() {
        let mut follower = FollowerClosed::default();
        follower.record(ts(10), 5, 4);
        assert_eq!(follower.usable(4), Timestamp::ZERO);
        assert_eq!(follower.usable(5), ts(10));
        // An older pair never lowers it.
        follower.record(ts(8), 3, 6);
        assert_eq!(follower.usable(6), ts(10));
        // A newer pending pair replaces an older pending one.
        follower.record(ts(12), 8, 6);
        follower.record(ts(14), 9, 6);
        assert_eq!(follower.usable(8), ts(10));
        assert_eq!(follower.usable(9), ts(14));
    }

    #[test]
    fn a_pending_pair_is_promoted_before_a_newer_one_replaces_it() {
        let mut follower = FollowerClosed::default();
        follower.record(ts(10), 5, 4);
        // By the time the next pair arrives the replica applied 5.
        follower.record(ts(20), 9, 5);
        assert_eq!(follower.usable(5), ts(10));
        assert_eq!(follower.usable(9), ts(20));
    }
}
