//! Latches: short-lived locks on key spans that serialize overlapping
//! requests on one range, from evaluation until the write is applied.
//!
//! Reads share with reads; a write excludes every overlapping request. A
//! request takes all its latches at once, so two requests cannot each hold
//! half of what the other needs. Waiters re-check when any latch is released
//! (simple and enough for the request rates of one range; an interval tree
//! can replace the list if it shows up in profiles).

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// A span `[start, end)` and whether the request writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatchSpan {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
    pub write: bool,
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
        }
    }

    fn conflicts(&self, other: &LatchSpan) -> bool {
        (self.write || other.write) && self.start < other.end && other.start < self.end
    }
}

#[derive(Default)]
pub struct LatchManager {
    held: Mutex<Vec<(u64, LatchSpan)>>,
    released: Notify,
    next_id: AtomicU64,
}

/// Holds a request's latches; dropping it releases them.
pub struct LatchGuard<'a> {
    manager: &'a LatchManager,
    id: u64,
}

impl LatchManager {
    /// Waits until no held latch conflicts with `spans`, then takes them.
    pub async fn acquire(&self, spans: Vec<LatchSpan>) -> LatchGuard<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // Register before checking, so a release between the check and
            // the wait is not missed.
            released.as_mut().enable();
            {
                let mut held = self.held.lock();
                let blocked = held
                    .iter()
                    .any(|(_, h)| spans.iter().any(|s| s.conflicts(h)));
                if !blocked {
                    held.extend(spans.into_iter().map(|s| (id, s)));
                    return LatchGuard { manager: self, id };
                }
            }
            released.await;
        }
    }

    /// How many latches are held (for tests and metrics).
    pub fn held(&self) -> usize {
        self.held.lock().len()
    }
}

impl Drop for LatchGuard<'_> {
    fn drop(&mut self) {
        self.manager.held.lock().retain(|(id, _)| *id != self.id);
        self.manager.released.notify_waiters();
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
}
