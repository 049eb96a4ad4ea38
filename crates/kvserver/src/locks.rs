//! The leaseholder's row locks: what a transaction's locking reads
//! ([`Request::GetForUpdate`]) hold, and the requests waiting for them or
//! for the resolution of an intent they met.
//!
//! An `UPDATE` reads its rows, then writes them. Without a lock, another
//! transaction may commit a write to a row in between; the update's write
//! then lands above it (`WriteTooOld`), its read no longer holds at the new
//! timestamp, and it restarts (SQLSTATE 40001 for an explicit
//! transaction). With a lock taken at the read, the other writer waits
//! here instead, and goes once the holder ended.
//!
//! The locks live in the leaseholder's memory, unreplicated, as
//! CockroachDB's are by default: a lease change or a restart loses them,
//! and a waiter breaks a lock it waited [`LOCK_WAIT_LIMIT`] for (a holder
//! that died, or a cycle of transactions waiting for each other's locks).
//! That is safe because nothing correct rests on them: intents, the
//! timestamp cache and read refresh keep transactions serializable with or
//! without locks; a lock only turns a restart into a wait.
//!
//! A lock lasts from the read to the holder's write of the key: its
//! intent then holds the key, and a writer that meets an intent pushes
//! its transaction (kvclient's `txn/conflict.rs`), which is what breaks a
//! cycle of waiters at once. Only a key locked and never written (a
//! `SELECT ... FOR UPDATE` alone) keeps its lock to the end.
//!
//! Not here: the replica's walk of a batch that consults this table
//! ([`crate::replica`]), and intents, which are MVCC data in storage.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use meridian_kvapi::{Request, Response, TxnId, TxnMeta, TxnStatus};
use parking_lot::Mutex;
use tokio::sync::Notify;

/// How long a request waits for one holder's lock before it breaks it.
/// Long enough for a transaction of a few statements between regions;
/// short enough that a cycle of waiters, which only this limit breaks,
/// stalls for a moment, not for good.
pub const LOCK_WAIT_LIMIT: Duration = Duration::from_millis(500);

/// How long a request that met another transaction's intent waits at the
/// leaseholder for its resolution before it goes back to its coordinator,
/// which then pushes the intent's transaction (kvclient's
/// `txn/conflict.rs`: that push is what finds a holder dead, or breaks a
/// cycle of transactions waiting for each other). An intent of a
/// transaction that is about to commit is resolved within a few
/// milliseconds, and the waiter goes on the moment it is, instead of after
/// the pusher's next backoff.
pub const INTENT_WAIT_LIMIT: Duration = Duration::from_millis(100);

/// One held lock.
struct Held {
    holder: TxnId,
    /// Woken when the lock is released or broken.
    released: Arc<Notify>,
}

#[derive(Default)]
struct Locks {
    /// The lease term the locks were taken under: a new lease starts
    /// without them, since its holder never saw their releases.
    term: u64,
    held: BTreeMap<Vec<u8>, Held>,
    /// Requests waiting for an intent on the key to be resolved.
    intent_waits: BTreeMap<Vec<u8>, Arc<Notify>>,
}

impl Locks {
    /// Forgets what an earlier lease held; its waiters go again at once.
    fn follow_term(&mut self, term: u64) {
        if self.term == term {
            return;
        }
        self.term = term;
        for (_, held) in std::mem::take(&mut self.held) {
            held.released.notify_waiters();
        }
        for (_, resolved) in std::mem::take(&mut self.intent_waits) {
            resolved.notify_waiters();
        }
    }
}

/// The locks of one range, at its leaseholder.
#[derive(Default)]
pub struct LockTable {
    locks: Mutex<Locks>,
    /// Requests waiting for a lock or an intent now.
    waiting: AtomicUsize,
}

/// A request's wait for another transaction's lock.
pub struct LockWait {
    key: Vec<u8>,
    holder: TxnId,
    released: Arc<Notify>,
}

impl LockTable {
    /// The first lock held by a transaction other than `txn` on a key that
    /// `requests` write or lock, under the lease of `term`.
    pub fn conflict(
        &self,
        term: u64,
        requests: &[Request],
        txn: Option<TxnId>,
    ) -> Option<LockWait> {
        let mut locks = self.locks.lock();
        locks.follow_term(term);
        if locks.held.is_empty() {
            return None;
        }
        let foreign = |held: &Held| Some(held.holder) != txn;
        requests.iter().find_map(|request| {
            let (key, held) = match request {
                Request::Put { key, .. }
                | Request::ConditionalPut { key, .. }
                | Request::Delete { key }
                | Request::GetForUpdate { key } => locks
                    .held
                    .get_key_value(key.as_slice())
                    .filter(|(_, h)| foreign(h))?,
                Request::DeleteRange { start, end } => locks
                    .held
                    .range::<[u8], _>((
                        std::ops::Bound::Included(start.as_slice()),
                        std::ops::Bound::Excluded(end.as_slice()),
                    ))
                    .find(|(_, h)| foreign(h))?,
                _ => return None,
            };
            Some(LockWait {
                key: key.clone(),
                holder: held.holder,
                released: held.released.clone(),
            })
        })
    }

    /// Takes or releases locks after `requests` of `txn` were served with
    /// `responses`: a locking read takes its key; the holder's write of the
    /// key, and its commit or abort (`EndTxn` answered with an ended
    /// record, `ResolveIntent` of an ended transaction), release it.
    pub fn record(
        &self,
        term: u64,
        requests: &[Request],
        responses: &[Response],
        txn: Option<&TxnMeta>,
    ) {
        let mut locks = self.locks.lock();
        locks.follow_term(term);
        for (request, response) in requests.iter().zip(responses) {
            if let Request::ResolveIntent { key, .. } = request {
                // Resolved, or pushed above a reader: its waiters look again.
                if let Some(resolved) = locks.intent_waits.remove(key) {
                    resolved.notify_waiters();
                }
            }
            match (request, response) {
                (Request::GetForUpdate { key }, _) => {
                    if let Some(txn) = txn {
                        locks.held.entry(key.clone()).or_insert_with(|| Held {
                            holder: txn.id,
                            released: Arc::new(Notify::new()),
                        });
                    }
                }
                (
                    Request::Put { key, .. }
                    | Request::ConditionalPut { key, .. }
                    | Request::Delete { key },
                    _,
                ) => {
                    // Its intent holds the key from now on, and a writer
                    // that meets it pushes the holder, which is how a cycle
                    // of waiting transactions breaks at once, not after
                    // LOCK_WAIT_LIMIT.
                    if let Some(txn) = txn {
                        release_span(&mut locks.held, txn.id, key, None);
                    }
                }
                (Request::ResolveIntent { key, txn, status }, _) if ended(*status) => {
                    release_span(&mut locks.held, txn.id, key, None);
                }
                (Request::EndTxn { lock_spans, .. }, Response::EndTxn { record })
                    if ended(record.status) =>
                {
                    for (start, end) in lock_spans {
                        release_span(&mut locks.held, record.meta.id, start, Some(end));
                    }
                }
                _ => {}
            }
        }
    }

    /// Where a request that met an intent on `key` waits for its
    /// resolution (any `ResolveIntent` of the key wakes it). Take the
    /// `notified()` future under the latches that found the intent, as for
    /// [`LockWait::wait`], and wait at most [`INTENT_WAIT_LIMIT`].
    pub fn intent_resolution(&self, key: &[u8]) -> Arc<Notify> {
        let mut locks = self.locks.lock();
        locks
            .intent_waits
            .entry(key.to_vec())
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    /// Waits for `resolved` (of `resolution`, from
    /// [`Self::intent_resolution`] for `key`); whether it came before
    /// [`INTENT_WAIT_LIMIT`]. A wait that timed out as the key's last
    /// waiter removes its entry, which no resolution may ever come for.
    pub async fn wait_for_resolution(
        &self,
        key: &[u8],
        resolution: &Arc<Notify>,
        resolved: tokio::sync::futures::Notified<'_>,
    ) -> bool {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let woken = tokio::time::timeout(INTENT_WAIT_LIMIT, resolved).await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        if woken.is_err() {
            let mut locks = self.locks.lock();
            let last = locks.intent_waits.get(key).is_some_and(|entry| {
                Arc::ptr_eq(entry, resolution) && Arc::strong_count(resolution) == 2
            });
            if last {
                locks.intent_waits.remove(key);
            }
        }
        woken.is_ok()
    }

    /// How many requests wait for a lock or an intent now.
    pub fn waiters(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// The keys locked now, and by whom (for tests and debugging).
    pub fn held(&self) -> Vec<(Vec<u8>, TxnId)> {
        let locks = self.locks.lock();
        locks
            .held
            .iter()
            .map(|(k, h)| (k.clone(), h.holder))
            .collect()
    }

    /// Breaks the lock `wait` waited for, if the same holder still has it.
    fn break_lock(&self, wait: &LockWait) {
        let mut locks = self.locks.lock();
        if locks
            .held
            .get(&wait.key)
            .is_some_and(|h| h.holder == wait.holder)
        {
            tracing::debug!(key = ?wait.key, holder = ?wait.holder, "breaking a lock waited on too long");
            if let Some(held) = locks.held.remove(&wait.key) {
                held.released.notify_waiters();
            }
        }
    }
}

impl LockWait {
    /// Waits until the lock is released, or for [`LOCK_WAIT_LIMIT`] and
    /// then breaks it. The caller must hold the latches under which it
    /// found the conflict when it calls this, and drop them before awaiting
    /// the returned future: the wakeup is registered at the call (tokio's
    /// `Notified` counts from its creation), so a release in between is
    /// not missed.
    pub fn wait<'a>(&'a self, table: &'a LockTable) -> impl std::future::Future<Output = ()> + 'a {
        let notified = self.released.notified();
        async move {
            table.waiting.fetch_add(1, Ordering::Relaxed);
            let released = tokio::time::timeout(LOCK_WAIT_LIMIT, notified).await;
            table.waiting.fetch_sub(1, Ordering::Relaxed);
            if released.is_err() {
                table.break_lock(self);
            }
        }
    }
}

fn ended(status: TxnStatus) -> bool {
    matches!(status, TxnStatus::Committed | TxnStatus::Aborted)
}

/// Releases `txn`'s locks on `start` (a point) or in `[start, end)`.
fn release_span(held: &mut BTreeMap<Vec<u8>, Held>, txn: TxnId, start: &[u8], end: Option<&[u8]>) {
    let keys: Vec<Vec<u8>> = match end {
        None => held
            .get(start)
            .filter(|h| h.holder == txn)
            .map(|_| start.to_vec())
            .into_iter()
            .collect(),
        Some(end) => held
            .range::<[u8], _>((
                std::ops::Bound::Included(start),
                std::ops::Bound::Excluded(end),
            ))
            .filter(|(_, h)| h.holder == txn)
            .map(|(k, _)| k.clone())
            .collect(),
    };
    for key in keys {
        if let Some(h) = held.remove(&key) {
            h.released.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use meridian_hlc::Timestamp;

    use super::*;

    fn txn(id: u128) -> TxnMeta {
        let mut meta = TxnMeta::new(b"anchor".to_vec(), Timestamp::new(1, 0));
        meta.id = TxnId(id);
        meta
    }

    fn lock(table: &LockTable, key: &[u8], holder: &TxnMeta) {
        let get = Request::GetForUpdate { key: key.to_vec() };
        table.record(1, &[get], &[Response::Get { value: None }], Some(holder));
    }

    fn put(key: &[u8]) -> Request {
        Request::Put {
            key: key.to_vec(),
            value: b"v".to_vec(),
        }
    }

    #[test]
    fn a_lock_blocks_other_writers_and_lockers_but_not_its_holder() {
        let table = LockTable::default();
        let (a, b) = (txn(1), txn(2));
        lock(&table, b"k", &a);
        assert!(table.conflict(1, &[put(b"k")], Some(a.id)).is_none());
        let wait = table
            .conflict(1, &[put(b"k")], Some(b.id))
            .expect("conflict");
        assert_eq!((wait.key.as_slice(), wait.holder), (&b"k"[..], a.id));
        assert!(table.conflict(1, &[put(b"k")], None).is_some());
        let locking = Request::GetForUpdate { key: b"k".to_vec() };
        assert!(table.conflict(1, &[locking], Some(b.id)).is_some());
        let range = Request::DeleteRange {
            start: b"a".to_vec(),
            end: b"z".to_vec(),
        };
        assert!(table.conflict(1, &[range], Some(b.id)).is_some());
        // Plain reads never wait.
        let get = Request::Get { key: b"k".to_vec() };
        assert!(table
            .conflict(1, &[get, put(b"other")], Some(b.id))
            .is_none());
    }

    #[test]
    fn ending_the_holder_releases_its_locks_and_only_its() {
        let table = LockTable::default();
        let (a, b) = (txn(1), txn(2));
        lock(&table, b"k1", &a);
        lock(&table, b"k2", &a);
        lock(&table, b"k3", &b);
        let record = meridian_kvapi::TxnRecord {
            meta: a.clone(),
            status: TxnStatus::Committed,
            last_heartbeat: Timestamp::new(1, 0),
            lock_spans: Vec::new(),
            in_flight_writes: Vec::new(),
        };
        let end = Request::EndTxn {
            key: a.anchor_key.clone(),
            commit: true,
            lock_spans: vec![(b"k0".to_vec(), b"k9".to_vec())],
            in_flight_writes: Vec::new(),
            one_phase: false,
        };
        // A pending record (a STAGING one too) keeps them.
        let mut pending = record.clone();
        pending.status = TxnStatus::Staging;
        table.record(
            1,
            std::slice::from_ref(&end),
            &[Response::EndTxn {
                record: Box::new(pending),
            }],
            Some(&a),
        );
        assert_eq!(table.held().len(), 3);
        table.record(
            1,
            &[end],
            &[Response::EndTxn {
                record: Box::new(record),
            }],
            Some(&a),
        );
        assert_eq!(table.held(), vec![(b"k3".to_vec(), b.id)]);
        let resolve = Request::ResolveIntent {
            key: b"k3".to_vec(),
            txn: Box::new(b.clone()),
            status: TxnStatus::Aborted,
        };
        table.record(
            1,
            &[resolve],
            &[Response::ResolveIntent { resolved: false }],
            None,
        );
        assert!(table.held().is_empty());
    }

    #[test]
    fn the_holder_s_write_of_the_key_gives_the_lock_to_its_intent() {
        let table = LockTable::default();
        let (a, b) = (txn(1), txn(2));
        lock(&table, b"k", &a);
        lock(&table, b"other", &a);
        table.record(1, &[put(b"k")], &[Response::Put], Some(&b));
        assert_eq!(table.held().len(), 2, "another's write releases nothing");
        table.record(1, &[put(b"k")], &[Response::Put], Some(&a));
        assert_eq!(table.held(), vec![(b"other".to_vec(), a.id)]);
    }

    #[test]
    fn a_new_lease_starts_without_locks() {
        let table = LockTable::default();
        lock(&table, b"k", &txn(1));
        assert!(table.conflict(2, &[put(b"k")], Some(txn(2).id)).is_none());
        assert!(table.held().is_empty());
    }

    #[tokio::test]
    async fn a_request_that_met_an_intent_waits_for_its_resolution_or_the_limit() {
        let table = LockTable::default();
        let resolution = table.intent_resolution(b"k");
        let resolved = resolution.notified();
        let other_key = Request::ResolveIntent {
            key: b"j".to_vec(),
            txn: Box::new(txn(1)),
            status: TxnStatus::Committed,
        };
        let this_key = Request::ResolveIntent {
            key: b"k".to_vec(),
            txn: Box::new(txn(1)),
            status: TxnStatus::Pending,
        };
        let answer = Response::ResolveIntent { resolved: true };
        table.record(1, &[other_key], std::slice::from_ref(&answer), None);
        table.record(1, &[this_key], &[answer], None);
        assert!(
            table.wait_for_resolution(b"k", &resolution, resolved).await,
            "woken by the resolution"
        );

        let resolution = table.intent_resolution(b"k");
        let started = tokio::time::Instant::now();
        let resolved = resolution.notified();
        assert!(!table.wait_for_resolution(b"k", &resolution, resolved).await);
        assert!(started.elapsed() >= INTENT_WAIT_LIMIT);
        assert!(
            table.locks.lock().intent_waits.is_empty(),
            "the last waiter's entry went with it"
        );
    }

    #[tokio::test]
    async fn a_waiter_goes_on_release_or_breaks_the_lock_after_the_limit() {
        let table = LockTable::default();
        let (a, b) = (txn(1), txn(2));
        lock(&table, b"k", &a);
        let wait = table.conflict(1, &[put(b"k")], Some(b.id)).unwrap();
        let waiting = wait.wait(&table);
        let resolve = Request::ResolveIntent {
            key: b"k".to_vec(),
            txn: Box::new(a.clone()),
            status: TxnStatus::Committed,
        };
        table.record(
            1,
            &[resolve],
            &[Response::ResolveIntent { resolved: true }],
            None,
        );
        let started = tokio::time::Instant::now();
        waiting.await;
        assert!(started.elapsed() < LOCK_WAIT_LIMIT, "woken by the release");

        lock(&table, b"k", &a);
        let wait = table.conflict(1, &[put(b"k")], Some(b.id)).unwrap();
        let started = tokio::time::Instant::now();
        wait.wait(&table).await;
        assert!(started.elapsed() >= LOCK_WAIT_LIMIT);
        assert!(table.held().is_empty(), "broken after the limit");
    }
}
