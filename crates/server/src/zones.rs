//! Zone configs as the cluster keeps them (records in the first range, in
//! the layout of `placement::records`): loading them for the queues, and
//! setting, showing and removing them for `meridian zone`.
//!
//! A change is one serializable transaction: it reads every record and
//! every node's locality, applies the change to the whole map, validates
//! the result against the cluster (`placement::ZoneConfigs::set_validated`)
//! and writes one record. Two concurrent changes therefore cannot together
//! produce a map neither would have accepted.
//!
//! `CONFIGURE ZONE USING` changes only the fields it names: the new fields
//! are laid over the span's stored config, as CockroachDB does.
//!
//! The root of inheritance is the node's flags (`--replication-factor`,
//! `--range-max-bytes`, `--gc-ttl-secs`) over CockroachDB's defaults; a
//! default record set with `meridian zone set --default` overrides it.
//!
//! The catalog range's config is not stored: unless a user set one on its
//! span, [`add_catalog_config`] derives it from the cluster's regions
//! (`placement::catalog`) wherever configs are read to be obeyed (the
//! queues) or checked (the status).
//!
//! Not here: acting on the configs (the queues), the SQL statements that
//! write them (the sql crate writes the same records in its own
//! transactions).

use std::sync::Arc;

use meridian_hlc::HybridClock;
use meridian_keys::space::CATALOG_SPAN;
use meridian_kvclient::txn::{run_txn, Txn, TxnError};
use meridian_kvclient::{ClientError, DistSender};
use meridian_placement::allocator::{Liveness, NodeInfo};
use meridian_placement::records::{
    default_zone_key, encode_zone_config, span_zone_key, zone_records_end, zone_records_start,
};
use meridian_placement::{
    catalog_config, parse_using, validate, PlacementError, ZoneConfig, ZoneConfigs,
};
use meridian_transport::Locality;

use crate::config::NodeConfig;
use crate::system::{node_prefix, NodeDescriptor};

/// Why a zone config could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    /// Bad text, an unsatisfiable config, a span that overlaps another.
    #[error("{0}")]
    Placement(#[from] PlacementError),
    #[error("{0}")]
    Txn(#[from] TxnError),
    #[error("{0}")]
    Client(#[from] ClientError),
}

/// Which config: the default one, or the one set on exactly a span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneTarget {
    Default,
    Span { start: Vec<u8>, end: Vec<u8> },
}

impl ZoneTarget {
    fn key(&self) -> Vec<u8> {
        match self {
            ZoneTarget::Default => default_zone_key(),
            ZoneTarget::Span { start, end } => span_zone_key(start, end),
        }
    }
}

/// The root every config inherits from, from a node's flags.
pub fn root_config(config: &NodeConfig) -> ZoneConfig {
    ZoneConfig {
        num_replicas: Some(config.replication_factor as u32),
        range_max_bytes: Some(config.range_max_bytes),
        gc_ttl_seconds: Some(config.gc_ttl.as_secs()),
        ..ZoneConfig::default_config()
    }
}

/// The stored map, read in a read-only transaction of its own (which,
/// unlike a plain read, resolves the intents a change just committed
/// leaves behind for a moment).
pub async fn load(
    ds: &DistSender,
    clock: &Arc<HybridClock>,
    root: &ZoneConfig,
) -> Result<ZoneConfigs, ZoneError> {
    let rows = run_txn(ds, clock, |txn| async move {
        txn.scan(&zone_records_start(), &zone_records_end(), 0)
            .await
    })
    .await?;
    Ok(ZoneConfigs::from_records_over(
        root.clone(),
        rows.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
    )?)
}

/// Adds the catalog range's derived config to `configs` (see the module
/// documentation) from the nodes not dead: a dead node (or a region whose
/// nodes all died) needs no catalog replica until it comes back.
pub(crate) fn add_catalog_config(configs: &mut ZoneConfigs, nodes: &[NodeInfo]) {
    let (start, end) = CATALOG_SPAN;
    if configs.get(start, end).is_some() {
        return;
    }
    let localities: Vec<Locality> = nodes
        .iter()
        .filter(|n| n.liveness != Liveness::Dead)
        .map(|n| n.locality.clone())
        .collect();
    let parent = configs.effective(start);
    if let Some(config) = catalog_config(&parent, &localities) {
        // Refused only when a span the user set straddles the catalog's
        // bounds (`meridian zone set` allows any span): then theirs governs.
        let _ = configs.set(start, end, config);
    }
}

/// The stored map and the cluster's localities, read in `txn`.
async fn load_in(txn: &Txn, root: &ZoneConfig) -> Result<(ZoneConfigs, Vec<Locality>), ZoneError> {
    let rows = txn
        .scan(&zone_records_start(), &zone_records_end(), 0)
        .await?;
    let configs = ZoneConfigs::from_records_over(
        root.clone(),
        rows.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
    )?;
    let start = node_prefix();
    let end = meridian_keys::space::prefix_end(&start).expect("system prefixes have an end");
    let localities = txn
        .scan(&start, &end, 0)
        .await?
        .iter()
        .filter_map(|(_, v)| serde_json::from_slice::<NodeDescriptor>(v).ok())
        .map(|n| n.locality)
        .collect();
    Ok((configs, localities))
}

/// Lays `using` (CockroachDB's `CONFIGURE ZONE USING` text) over the
/// target's stored config, validates the whole map against the cluster and
/// stores it. Returns the target's config as now stored. Nothing changes
/// on error.
pub async fn set(
    ds: &DistSender,
    clock: &Arc<HybridClock>,
    root: &ZoneConfig,
    target: &ZoneTarget,
    using: &str,
) -> Result<ZoneConfig, ZoneError> {
    let change = parse_using(using)?;
    let result = run_txn(ds, clock, |txn| {
        let change = change.clone();
        async move {
            let (mut configs, localities) = match load_in(&txn, root).await {
                Ok(loaded) => loaded,
                Err(ZoneError::Txn(e)) => return Err(e),
                Err(other) => return Ok(Err(other)),
            };
            let stored = match target {
                ZoneTarget::Default => configs.default_config().clone(),
                ZoneTarget::Span { start, end } => {
                    configs.get(start, end).cloned().unwrap_or_default()
                }
            };
            let config = change.inherit(&stored);
            let checked = match target {
                ZoneTarget::Default => set_default_validated(&mut configs, &config, &localities),
                ZoneTarget::Span { start, end } => {
                    configs.set_validated(start, end, config.clone(), &localities)
                }
            };
            if let Err(e) = checked {
                return Ok(Err(e.into()));
            }
            txn.put(&target.key(), &encode_zone_config(&config)).await?;
            Ok(Ok(config))
        }
    })
    .await?;
    result
}

/// Replaces the default config, checking it and every span under it.
fn set_default_validated(
    configs: &mut ZoneConfigs,
    config: &ZoneConfig,
    localities: &[Locality],
) -> Result<(), PlacementError> {
    let mut next = configs.clone();
    next.set_default(config.inherit(configs.default_config()));
    let starts = std::iter::once(Vec::new()).chain(next.spans().iter().map(|s| s.start.clone()));
    for start in starts {
        let effective = next.effective(&start);
        validate(&effective)?;
        meridian_placement::validate_for_cluster(&effective, localities)?;
    }
    *configs = next;
    Ok(())
}

/// Removes the config set on exactly the target span (its ranges then
/// follow the enclosing span's config). The default cannot be removed,
/// only changed.
pub async fn remove(
    ds: &DistSender,
    clock: &Arc<HybridClock>,
    target: &ZoneTarget,
) -> Result<(), ZoneError> {
    let ZoneTarget::Span { start, end } = target else {
        return Err(PlacementError::Invalid(
            "the default zone config cannot be removed; change it with `zone set --default`".into(),
        )
        .into());
    };
    let key = target.key();
    let found = run_txn(ds, clock, |txn| {
        let key = key.clone();
        async move {
            let found = txn.get(&key).await?.is_some();
            if found {
                txn.delete(&key).await?;
            }
            Ok(found)
        }
    })
    .await?;
    if !found {
        return Err(PlacementError::NoSuchSpan {
            start: start.clone(),
            end: end.clone(),
        }
        .into());
    }
    Ok(())
}
