//! The MVCC GC queue: removes the versions of a range that no read younger
//! than the GC ttl can see, so a key updated for ever does not keep every
//! version it ever had. (Not to be confused with the
//! [`replica_gc_queue`](crate::replica_gc_queue), which removes whole
//! replicas a range no longer has.)
//!
//! The ttl is the node's `gc_ttl` setting (`--gc-ttl-secs`, default
//! [`DEFAULT_GC_TTL`]: 4 hours, CockroachDB's default since 23.1); zone
//! configs (issue 11) will give each range its own `gc.ttlseconds` and
//! take this setting over as the cluster default. Every node should run
//! with the same ttl: the leaseholder's applies.
//!
//! When a range is worth collecting ([`should_collect`], a plain function
//! with tests): it must have garbage, versions that are not a live key's
//! newest (`version_count - live_count` of its `MvccStats`); and its last
//! collection must be at least [`gc_interval`] ago. The last collection
//! needs no bookkeeping here: a GC raises the range's replicated threshold
//! to `now - ttl`, so `(now - ttl) - threshold` is the time since it ran,
//! whichever node held the lease then, across restarts. Versions become
//! collectable only once older than the ttl, so collecting more often
//! gains little and costs a scan of the range each time; waiting half the
//! ttl (at most an hour) bounds what a steadily updated key keeps to about
//! 1.5 ttl of history, or the ttl plus an hour. MvccStats do not say how
//! old the garbage is (CockroachDB keeps a `GCBytesAge` for that), so a
//! better score waits for such a counter.
//!
//! Not here: finding and removing the versions and raising the threshold
//! (kvserver's `gc` module, one Raft command per bounded pass), which
//! versions are garbage (storage).

use std::time::Duration;

use meridian_hlc::{HybridClock, Timestamp};
use meridian_kvapi::KvError;
use meridian_kvserver::gc::GcOutcome;
use meridian_kvserver::replica::Replica;
use meridian_kvserver::Store;
use meridian_storage::MvccStats;
use tracing::debug;

/// How long versions stay readable when no zone config says otherwise.
pub const DEFAULT_GC_TTL: Duration = Duration::from_secs(4 * 60 * 60);

/// The longest a range with garbage waits between two collections.
const MAX_GC_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// How long after its last collection a range is collected again: half
/// the ttl, at most [`MAX_GC_INTERVAL`].
pub(crate) fn gc_interval(ttl: Duration) -> Duration {
    (ttl / 2).min(MAX_GC_INTERVAL)
}

/// Whether a range with `stats` and GC `threshold` (zero: never
/// collected) is worth collecting at `now` with `ttl`. See the module
/// documentation for the rule and why.
pub(crate) fn should_collect(
    stats: &MvccStats,
    threshold: Timestamp,
    now: Timestamp,
    ttl: Duration,
) -> bool {
    let garbage = stats.version_count - stats.live_count;
    if garbage <= 0 {
        return false;
    }
    let candidate = now.sub_duration(ttl);
    if candidate <= threshold {
        // The threshold is already there (or above it, after a shorter ttl).
        return false;
    }
    if threshold.is_zero() {
        return true;
    }
    let since_last = Duration::from_nanos(candidate.wall_nanos - threshold.wall_nanos);
    since_last >= gc_interval(ttl)
}

/// One pass of the queue over one range: collects `replica`'s range if
/// [`should_collect`] says so, and returns what the GC did. Runs at the
/// leaseholder (the scheduler only passes ranges this node leads). Public
/// for the cluster tests, which drive passes by hand.
pub async fn maybe_collect(
    store: &Store,
    replica: &Replica,
    clock: &HybridClock,
    ttl: Duration,
) -> Result<Option<GcOutcome>, KvError> {
    let threshold = replica.gc_threshold();
    if !should_collect(&replica.stats(), threshold, clock.now(), ttl) {
        return Ok(None);
    }
    let outcome = store.gc_range(replica.range_id(), ttl).await?;
    debug!(
        range_id = replica.range_id(),
        removed = outcome.removed,
        threshold = %outcome.threshold,
        "mvcc gc"
    );
    Ok(Some(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(d: Duration) -> Timestamp {
        Timestamp::new(u64::try_from(d.as_nanos()).unwrap(), 0)
    }

    /// A range of one key updated `updates` times.
    fn updated(updates: i64) -> MvccStats {
        MvccStats {
            live_count: 1,
            key_count: 1,
            version_count: updates,
            ..MvccStats::default()
        }
    }

    #[test]
    fn a_range_without_garbage_is_never_collected() {
        let now = at(100 * HOUR);
        assert!(!should_collect(
            &MvccStats::default(),
            Timestamp::ZERO,
            now,
            HOUR
        ));
        let one_version_per_key = MvccStats {
            live_count: 5,
            key_count: 5,
            version_count: 5,
            ..MvccStats::default()
        };
        assert!(!should_collect(
            &one_version_per_key,
            Timestamp::ZERO,
            now,
            HOUR
        ));
    }

    #[test]
    fn a_range_with_garbage_never_collected_is_collected() {
        assert!(should_collect(
            &updated(2),
            Timestamp::ZERO,
            at(100 * HOUR),
            4 * HOUR
        ));
        let deleted = MvccStats {
            live_count: 0,
            key_count: 1,
            version_count: 2,
            ..MvccStats::default()
        };
        assert!(should_collect(
            &deleted,
            Timestamp::ZERO,
            at(100 * HOUR),
            4 * HOUR
        ));
    }

    #[test]
    fn a_range_waits_an_interval_after_its_last_collection() {
        let ttl = 4 * HOUR;
        let now = at(100 * HOUR);
        // Collected 30 minutes ago: its threshold is now - ttl - 30 min.
        let recent = now.sub_duration(ttl).sub_duration(HOUR / 2);
        assert!(!should_collect(&updated(1000), recent, now, ttl));
        // Half this ttl is two hours, but the interval is capped at one.
        let hour_ago = now.sub_duration(ttl).sub_duration(HOUR);
        assert!(should_collect(&updated(1000), hour_ago, now, ttl));
        // A short ttl: half of it.
        let ttl = Duration::from_secs(10);
        let now = at(HOUR);
        let four_secs = now.sub_duration(ttl).sub_duration(Duration::from_secs(4));
        let five_secs = now.sub_duration(ttl).sub_duration(Duration::from_secs(5));
        assert!(!should_collect(&updated(3), four_secs, now, ttl));
        assert!(should_collect(&updated(3), five_secs, now, ttl));
    }

    #[test]
    fn a_threshold_above_now_minus_ttl_waits_for_time_to_pass_it() {
        // The ttl was raised from 1 s to 4 h: the threshold set under the old
        // ttl stays (it never moves back) and nothing is collectable until
        // now - 4 h passes it.
        let now = at(100 * HOUR);
        let under_old_ttl = now.sub_duration(Duration::from_secs(1));
        assert!(!should_collect(&updated(50), under_old_ttl, now, 4 * HOUR));
    }

    #[test]
    fn the_interval_is_half_the_ttl_capped_at_an_hour() {
        assert_eq!(
            gc_interval(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
        assert_eq!(gc_interval(HOUR), HOUR / 2);
        assert_eq!(gc_interval(DEFAULT_GC_TTL), HOUR);
        assert_eq!(gc_interval(25 * HOUR), HOUR);
    }
}
