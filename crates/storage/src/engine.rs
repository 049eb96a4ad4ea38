//! The engine: one RocksDB per node, its column families, and batches.
//!
//! | column family | key | value |
//! |---|---|---|
//! | `data` | MVCC keys ([`meridian_keys::mvcc`]) | versions and intents ([`crate::mvcc`]) |
//! | `raft_log` | `range_id` BE, `index` BE | an opaque log entry |
//! | `raft_state` | `range_id` BE, kind byte | vote, committed index, last purged log id |
//! | `range_local` | `range_id` BE, kind byte | applied state, lease, descriptor, stats |
//!
//! All writes go through a [`Batch`] committed atomically with
//! [`Engine::commit`]; `sync = true` returns only after the RocksDB WAL is on
//! disk. The engine is cheap to clone (an `Arc`), and every layer above shares
//! one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Options,
    SliceTransform, WriteBatch, WriteOptions, DB,
};

use crate::cursor::{Cursor, DbCursor, MergedCursor, Reader};
use crate::error::Result;

pub(crate) const CF_DATA: &str = "data";
pub(crate) const CF_RAFT_LOG: &str = "raft_log";
pub(crate) const CF_RAFT_STATE: &str = "raft_state";
pub(crate) const CF_RANGE_LOCAL: &str = "range_local";
/// Transaction records, keyed by anchor key ([`crate::txn_record`]).
pub(crate) const CF_TXN: &str = "txn";
/// A batch's writes to the data and transaction-record families.
pub(crate) type Overlays = (
    BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    BTreeMap<Vec<u8>, Option<Vec<u8>>>,
);

const COLUMN_FAMILIES: [&str; 5] = [CF_DATA, CF_RAFT_LOG, CF_RAFT_STATE, CF_RANGE_LOCAL, CF_TXN];

/// The prefix extractor of the data column family: the escaped user key
/// with its terminator, shared by a key's intent and all its versions.
fn mvcc_user_key_prefix(raw: &[u8]) -> &[u8] {
    match meridian_keys::mvcc::user_key_prefix_len(raw) {
        Ok(len) => &raw[..len],
        Err(_) => raw,
    }
}

/// Tunables of an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Size of the block cache shared by all column families.
    pub block_cache_bytes: usize,
    /// Create the database if the directory is empty.
    pub create_if_missing: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            block_cache_bytes: 256 << 20,
            create_if_missing: true,
        }
    }
}

/// A node's storage engine. Clone to share.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    db: DB,
    path: PathBuf,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl Engine {
    /// Opens (or creates) the engine in directory `path`.
    pub fn open(path: impl AsRef<Path>, options: &EngineOptions) -> Result<Engine> {
        let path = path.as_ref().to_path_buf();
        let cache = Cache::new_lru_cache(options.block_cache_bytes);

        let mut db_opts = Options::default();
        db_opts.create_if_missing(options.create_if_missing);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_background_jobs(2);
        db_opts.set_bytes_per_sync(1 << 20);

        let descriptors = COLUMN_FAMILIES.iter().map(|name| {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            table.set_format_version(6);
            let mut cf_opts = Options::default();
            if *name == CF_DATA {
                // Bloom filters on the user-key prefix: a read of one key
                // skips every file and memtable that lacks the key, although
                // it seeks (it must find the newest version at or below its
                // timestamp) rather than gets.
                table.set_bloom_filter(10.0, false);
                table.set_whole_key_filtering(false);
                cf_opts.set_prefix_extractor(SliceTransform::create(
                    "meridian.mvcc_user_key",
                    mvcc_user_key_prefix,
                    None,
                ));
                cf_opts.set_memtable_prefix_bloom_ratio(0.1);
                cf_opts.set_compression_type(DBCompressionType::Lz4);
            } else if *name == CF_RANGE_LOCAL || *name == CF_TXN {
                table.set_bloom_filter(10.0, false);
                cf_opts.set_compression_type(DBCompressionType::Lz4);
            } else {
                // Log entries are written once, read rarely, purged soon.
                cf_opts.set_compression_type(DBCompressionType::None);
            }
            cf_opts.set_block_based_table_factory(&table);
            ColumnFamilyDescriptor::new(*name, cf_opts)
        });
        let db = DB::open_cf_descriptors(&db_opts, &path, descriptors)?;
        Ok(Engine {
            inner: Arc::new(Inner { db, path }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) fn db(&self) -> &DB {
        &self.inner.db
    }

    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        self.inner
            .db
            .cf_handle(name)
            .expect("column family created at open")
    }

    /// A new, empty batch over this engine.
    pub fn batch(&self) -> Batch {
        Batch {
            engine: self.clone(),
            write_batch: WriteBatch::default(),
            overlay: BTreeMap::new(),
            txn_overlay: BTreeMap::new(),
        }
    }

    /// Applies `batch` atomically. With `sync`, returns only once the write
    /// is durable (the WAL is fsynced).
    pub fn commit(&self, batch: Batch, sync: bool) -> Result<()> {
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.inner.db.write_opt(batch.write_batch, &opts)?;
        Ok(())
    }

    /// Flushes memtables to SST files (tests and benchmarks use it to read
    /// from disk rather than memory).
    pub fn flush(&self) -> Result<()> {
        for name in COLUMN_FAMILIES {
            self.inner.db.flush_cf(self.cf(name))?;
        }
        Ok(())
    }

    /// Raw point read from a non-data column family.
    pub(crate) fn get_cf(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.inner.db.get_cf(self.cf(cf), key)?)
    }

    /// A raw cursor over a column family, within `[lower, upper)`, seeing
    /// every key in order.
    pub(crate) fn cursor_cf(
        &self,
        cf: &str,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
    ) -> DbCursor<'_> {
        self.cursor_cf_opts(cf, lower, upper, false)
    }

    /// As [`Engine::cursor_cf`]; with `same_prefix` the cursor only serves
    /// keys of the user-key prefix it is first positioned at, and uses the
    /// prefix bloom filters to skip files without it.
    pub(crate) fn cursor_cf_opts(
        &self,
        cf: &str,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
        same_prefix: bool,
    ) -> DbCursor<'_> {
        let mut opts = rocksdb::ReadOptions::default();
        if same_prefix {
            opts.set_prefix_same_as_start(true);
        } else {
            opts.set_total_order_seek(true);
        }
        if let Some(lower) = lower {
            opts.set_iterate_lower_bound(lower);
        }
        if let Some(upper) = upper {
            opts.set_iterate_upper_bound(upper);
        }
        DbCursor::new(self.inner.db.raw_iterator_cf_opt(self.cf(cf), opts))
    }
}

impl Reader for Engine {
    fn cursor(&self, lower: Option<&[u8]>, upper: Option<&[u8]>) -> Box<dyn Cursor + '_> {
        Box::new(self.cursor_cf(CF_DATA, lower, upper))
    }

    fn key_cursor(&self, prefix: &[u8], upper: &[u8]) -> Box<dyn Cursor + '_> {
        Box::new(self.cursor_cf_opts(CF_DATA, Some(prefix), Some(upper), true))
    }
}

/// A set of writes applied atomically by [`Engine::commit`]. Reads through
/// a batch (it is a [`Reader`]) see the engine with the batch's own data
/// writes applied, so a command evaluated in several steps sees its earlier
/// steps.
pub struct Batch {
    engine: Engine,
    write_batch: WriteBatch,
    /// Data-CF writes of this batch: `None` is a deletion.
    overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Transaction-record writes of this batch, likewise: replicated with
    /// the data writes, and read back by the batch's later steps.
    txn_overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Batch {
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn is_empty(&self) -> bool {
        self.write_batch.is_empty()
    }

    /// Serialized size of the batch in bytes.
    pub fn size_in_bytes(&self) -> usize {
        self.write_batch.size_in_bytes()
    }

    /// The data and transaction-record writes of this batch.
    pub(crate) fn into_overlays(self) -> Overlays {
        (self.overlay, self.txn_overlay)
    }

    /// A transaction-record write of this batch (`Some(None)`: deleted
    /// here), or `None` if the batch did not touch `key`.
    pub(crate) fn pending_txn_record(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.txn_overlay.get(key).map(Option::as_deref)
    }

    pub(crate) fn put_txn_raw(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.write_batch
            .put_cf(self.engine.cf(CF_TXN), &key, &value);
        self.txn_overlay.insert(key, Some(value));
    }

    pub(crate) fn delete_txn_raw(&mut self, key: Vec<u8>) {
        self.write_batch.delete_cf(self.engine.cf(CF_TXN), &key);
        self.txn_overlay.insert(key, None);
    }

    /// Whether this batch wrote (or deleted) data-CF key `key`.
    pub(crate) fn has_pending_data(&self, key: &[u8]) -> bool {
        self.overlay.contains_key(key)
    }

    pub(crate) fn put_data(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.write_batch
            .put_cf(self.engine.cf(CF_DATA), &key, &value);
        self.overlay.insert(key, Some(value));
    }

    pub(crate) fn delete_data(&mut self, key: Vec<u8>) {
        self.write_batch.delete_cf(self.engine.cf(CF_DATA), &key);
        self.overlay.insert(key, None);
    }

    pub(crate) fn put_cf(&mut self, cf: &str, key: &[u8], value: &[u8]) {
        self.write_batch.put_cf(self.engine.cf(cf), key, value);
    }

    pub(crate) fn delete_cf(&mut self, cf: &str, key: &[u8]) {
        self.write_batch.delete_cf(self.engine.cf(cf), key);
    }

    pub(crate) fn delete_range_cf(&mut self, cf: &str, from: &[u8], to: &[u8]) {
        self.write_batch
            .delete_range_cf(self.engine.cf(cf), from, to);
    }
}

impl Reader for Batch {
    fn cursor(&self, lower: Option<&[u8]>, upper: Option<&[u8]>) -> Box<dyn Cursor + '_> {
        let db = self.engine.cursor_cf(CF_DATA, lower, upper);
        if self.overlay.is_empty() {
            return Box::new(db);
        }
        Box::new(MergedCursor::new(db, &self.overlay, lower, upper))
    }

    fn key_cursor(&self, prefix: &[u8], upper: &[u8]) -> Box<dyn Cursor + '_> {
        let db = self
            .engine
            .cursor_cf_opts(CF_DATA, Some(prefix), Some(upper), true);
        if self.overlay.is_empty() {
            return Box::new(db);
        }
        Box::new(MergedCursor::new(
            db,
            &self.overlay,
            Some(prefix),
            Some(upper),
        ))
    }
}
