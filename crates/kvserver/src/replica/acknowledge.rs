//! What the clock does before a served batch is answered: writes wait
//! until the clock passed their timestamp (commit wait), and the clock
//! moves up to what was served.
//!
//! Not here: the rule for how long a wait lasts ([`crate::lease::commit_wait`],
//! with the argument for it).

use meridian_hlc::Timestamp;
use meridian_kvapi::{BatchRequest, Request};

use super::Replica;
use crate::lease::commit_wait;

impl Replica {
    /// Holds the answer to `request`, whose writes landed at `ts`, until
    /// the clock passed `ts`, if anyone may see them once it is answered:
    /// a commit, or a write outside a transaction. A transaction's intents
    /// are seen by nobody until it commits, so they do not wait; that
    /// matters for a range with global reads, whose writes lie ahead of
    /// the present.
    pub(super) async fn wait_until_visible(&self, request: &BatchRequest, ts: Timestamp) {
        if request.txn.is_some() && !request.requests.iter().any(Request::is_commit) {
            return;
        }
        if let Some(wait) = commit_wait(ts, self.clock.physical_now()) {
            tokio::time::sleep(wait).await;
        }
    }

    /// Moves the clock up to `ts`, a timestamp this replica served: it must
    /// not hand out a timestamp below one it served, since a read arriving
    /// later relies on it to see the write. A visible write is answered
    /// only once the physical clock passed its timestamp, so this never
    /// moves the clock ahead of the present for one. A timestamp in the
    /// future (a read, or an intent, of a transaction pushed there by a
    /// write to a range with global reads) leaves the clock where it is:
    /// the timestamp cache already keeps later writes above it, and a clock
    /// further than `max_offset` ahead would be refused by every peer.
    pub(super) fn forward_clock_to_served(&self, ts: Timestamp) {
        let bound = self.clock.physical_now() + self.clock.max_offset().as_nanos() as u64;
        if ts.wall_nanos <= bound {
            self.clock.forward_to(ts);
        }
    }
}
