//! Latches: short-lived locks on key spans that serialize overlapping
//! requests on one range, from evaluation until the write is applied.
//!
//! Reads share with reads; a write excludes every overlapping request. A
//! request takes all its latches at once, so two requests cannot each hold
//! half of what the other needs.
//!
//! Latches are granted first come, first served: a request waits for the
//! held latches it conflicts with *and* for every earlier waiter it
//! conflicts with. Without the second rule a steady stream of readers on a
//! key, each overlapping the last, would keep a writer (or a split's latch
//! over the whole range) waiting for ever. A waiter only ever waits for
//! requests that arrived before it, so waiting cannot form a cycle. A
//! request that gives up (its future is dropped) leaves the queue and wakes
//! those behind it.
//!
//! Timestamp-aware where the timestamp is known before latching (the
//! client gave it: a transaction's batch, a read at a fixed time): a read
//! at `t` and a write above `t` share, since the read does not see the
//! write, and a write's timestamp only ever moves up after latching (above
//! a lease start, a read, a newer version). A latch without a timestamp
//! (the leaseholder picks it later, under the lease) conflicts with every
//! overlapping write. Waiters re-check when any latch is released or any
//! waiter leaves (simple and enough for the request rates of one range; an
//! interval tree can replace the lists if it shows up in profiles).

use meridian_hlc::Timestamp;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// A span `[start, end)`, whether the request writes it, and at which
/// timestamp (`None`: not known yet, conflicts with every overlapping
/// write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatchSpan {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
    pub write: bool,
    pub ts: Option<Timestamp>,
}

impl LatchSpan {
    /// The span of a single key.
    pub fn point(key: &[u8], write: bool) -> Self {
        let mut end = key.to_vec();
        end.push(0);
        LatchSpan {
            start: key.to_vec(),
            end,
            write,
            ts: None,
        }
    }

    /// The same span, taken at `ts`.
    pub fn at(self, ts: Option<Timestamp>) -> Self {
        LatchSpan { ts, ..self }
    }

    fn conflicts(&self, other: &LatchSpan) -> bool {
        let overlap = self.start < other.end && other.start < self.end;
        overlap
            && match (self.write, other.write) {
                (false, false) => false,
                (true, true) => true,
                (true, false) => write_conflicts_with_read(self.ts, other.ts),
                (false, true) => write_conflicts_with_read(other.ts, self.ts),
            }
    }
}

/// A write at `write` and a read at `read` conflict unless both are known
/// and the write lies above the read (which does not see it).
fn write_conflicts_with_read(write: Option<Timestamp>, read: Option<Timestamp>) -> bool {
    match (write, read) {
        (Some(write), Some(read)) => write <= read,
        _ => true,
    }
}

fn any_conflict(a: &[LatchSpan], b: &[LatchSpan]) -> bool {
    a.iter().any(|x| b.iter().any(|y| x.conflicts(y)))
}

#[derive(Default)]
struct Queue {
    /// Granted latches, by request id.
    held: Vec<(u64, LatchSpan)>,
    /// Requests waiting, in arrival (= id) order.
    waiting: Vec<(u64, Vec<LatchSpan>)>,
    next_id: u64,
}

#[derive(Default)]
pub struct LatchManager {
    queue: Mutex<Queue>,
    changed: Notify,
}

/// Holds a request's latches; dropping it releases them.
pub struct LatchGuard<'a> {
    manager: &'a LatchManager,
    id: u64,
}

/// A place in the queue; dropping it (the request gave up) leaves the queue.
struct Waiting<'a> {
    manager: &'a LatchManager,
    id: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut queue = self.manager.queue.lock();
        let before = queue.waiting.len();
        queue.waiting.retain(|(id, _)| *id != self.id);
        if queue.waiting.len() != before {
            drop(queue);
            self.manager.changed.notify_waiters();
        }
    }
}

impl LatchManager {
    /// An exclusive latch over a whole range `span`: every request on the
    /// range finishes first, and none starts until it is released (what a
    /// split or a GC needs around its proposal).
    pub async fn acquire_range(&self, span: &(Vec<u8>, Vec<u8>)) -> LatchGuard<'_> {
        self.acquire(vec![LatchSpan {
            start: span.0.clone(),
            end: span.1.clone(),
            write: true,
            ts: None,
        }])
        .await
    }

    /// Waits until no held latch and no earlier waiter conflicts with
    /// `spans`, then takes them.
    pub async fn acquire(&self, spans: Vec<LatchSpan>) -> LatchGuard<'_> {
        // The spans wait in the queue and move to `held` when granted.
        let id = {
            let mut queue = self.queue.lock();
            let id = queue.next_id;
            queue.next_id += 1;
            queue.waiting.push((id, spans));
            id
        };
        let place = Waiting { manager: self, id };
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Register before checking, so a release between the check and
            // the wait is not missed.
            changed.as_mut().enable();
            {
                let mut queue = self.queue.lock();
                let at = queue
                    .waiting
                    .iter()
                    .position(|(w, _)| *w == id)
                    .expect("a waiter stays queued until granted or dropped");
                let (earlier, rest) = queue.waiting.split_at(at);
                let spans = &rest[0].1;
                let blocked = queue
                    .held
                    .iter()
                    .any(|(_, h)| spans.iter().any(|s| s.conflicts(h)))
                    || earlier.iter().any(|(_, e)| any_conflict(e, spans));
                if !blocked {
                    let (_, spans) = queue.waiting.remove(at);
                    queue.held.extend(spans.into_iter().map(|s| (id, s)));
                    std::mem::forget(place);
                    return LatchGuard { manager: self, id };
                }
            }
            changed.await;
        }
    }

    /// How many latches are held (for tests and metrics).
    pub fn held(&self) -> usize {
        self.queue.lock().held.len()
    }

    /// How many requests wait for latches (for tests and metrics).
    pub fn waiting(&self) -> usize {
        self.queue.lock().waiting.len()
    }
}

impl Drop for LatchGuard<'_> {
    fn drop(&mut self) {
        self.manager
            .queue
            .lock()
            .held
            .retain(|(id, _)| *id != self.id);
        self.manager.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn writes_exclude_overlapping_requests_reads_share() {
        let latches = Arc::new(LatchManager::default());
        let write_a = latches.acquire(vec![LatchSpan::point(b"a", true)]).await;
        // Reads of other keys and shared reads proceed.
        let read_b = latches.acquire(vec![LatchSpan::point(b"b", false)]).await;
        let read_b2 = latches.acquire(vec![LatchSpan::point(b"b", false)]).await;
        assert_eq!(latches.held(), 3);

        // A scan over a..c must wait for the write on a.
        let waiter = {
            let latches = latches.clone();
            tokio::spawn(async move {
                let span = LatchSpan {
                    ts: None,
                    start: b"a".to_vec(),
                    end: b"c".to_vec(),
                    write: false,
                };
                let _guard = latches.acquire(vec![span]).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiter.is_finished(),
            "scan ran while a write latch was held"
        );
        drop(write_a);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        drop((read_b, read_b2));
        assert_eq!(latches.held(), 0);
    }

    fn point(key: &[u8], write: bool) -> Vec<LatchSpan> {
        vec![LatchSpan::point(key, write)]
    }

    /// Readers arriving while a writer waits queue behind it: a stream of
    /// overlapping reads cannot starve the write.
    #[tokio::test]
    async fn a_waiting_writer_is_not_overtaken_by_later_readers() {
        let latches = LatchManager::default();
        let first_read = latches.acquire(point(b"k", false)).await;

        let write = latches.acquire(point(b"k", true));
        tokio::pin!(write);
        assert!(futures_util::poll!(write.as_mut()).is_pending());

        let later_read = latches.acquire(point(b"k", false));
        tokio::pin!(later_read);
        assert!(
            futures_util::poll!(later_read.as_mut()).is_pending(),
            "a read overtook the waiting write"
        );
        assert_eq!(latches.waiting(), 2);

        // A read of another key is not held up by the queue.
        let other = latches.acquire(point(b"other", false)).await;
        drop(other);

        drop(first_read);
        let write_guard = write.await;
        assert!(futures_util::poll!(later_read.as_mut()).is_pending());
        drop(write_guard);
        let _read = later_read.await;
        assert_eq!(latches.waiting(), 0);
    }

    /// A waiter that gives up leaves the queue and lets those behind it in.
    #[tokio::test]
    async fn a_cancelled_waiter_leaves_the_queue() {
        let latches = LatchManager::default();
        let read = latches.acquire(point(b"k", false)).await;
        {
            let write = latches.acquire(point(b"k", true));
            tokio::pin!(write);
            assert!(futures_util::poll!(write.as_mut()).is_pending());
            assert_eq!(latches.waiting(), 1);
        }
        assert_eq!(latches.waiting(), 0);
        let second_read = latches.acquire(point(b"k", false)).await;
        drop((read, second_read));
        assert_eq!(latches.held(), 0);
    }

    fn at(key: &[u8], write: bool, wall: u64) -> LatchSpan {
        LatchSpan::point(key, write).at(Some(Timestamp::new(wall, 0)))
    }

    /// A read below a pending write does not see it and goes ahead; a read
    /// at or above it, or one whose timestamp is not known yet, waits.
    #[test]
    fn reads_below_a_write_share_with_it() {
        let write = at(b"k", true, 10);
        assert!(!write.conflicts(&at(b"k", false, 9)), "read below");
        assert!(write.conflicts(&at(b"k", false, 10)), "read at");
        assert!(write.conflicts(&at(b"k", false, 11)), "read above");
        assert!(
            write.conflicts(&LatchSpan::point(b"k", false)),
            "read, time unknown"
        );
        assert!(
            LatchSpan::point(b"k", true).conflicts(&at(b"k", false, 1)),
            "write, time unknown"
        );
        assert!(
            write.conflicts(&at(b"k", true, 1)),
            "writes always conflict"
        );
        assert!(!write.conflicts(&at(b"l", false, 11)), "other keys never");
    }
}
