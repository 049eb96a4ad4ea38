//! Bootstrapping a cluster: `meridian init` makes the receiving node node 1
//! of a new cluster.
//!
//! 1. Refuse if this node is a member already, if its store has an
//!    identity, or if one of its `--join` nodes answers (within 2 s) that
//!    it belongs to a cluster (this check is not atomic with the
//!    bootstrap);
//! 2. become a member as node 1 of a new cluster id;
//! 3. create range 1 (`[MIN, 0x04)`: meta and system keys; it never
//!    splits), range 3 (`[0x04, 0x10)`: the SQL catalog, a range of its
//!    own so that its zone config can differ, see `placement::catalog`) and
//!    range 2 (`[0x10, MAX)`), one voter each;
//! 4. write the bootstrap records ([`Node::ensure_bootstrap_records`]):
//!    the node- and range-id counters, the default zone config (from this
//!    node's `--replication-factor`, `--range-max-bytes` and
//!    `--gc-ttl-secs`), node 1's record, the three meta records;
//! 5. only then write the store's identity.
//!
//! Every step is idempotent: a node 1 that crashed before its identity was
//! written is bootstrapped again by the next `init`; one that crashed after
//! it retries step 4 at restart until the records exist.
//!
//! Not here: joining an existing cluster (`join`), the records' layout
//! (`system`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use meridian_keys::space::{CATALOG_SPAN, MAX_KEY, MIN_KEY};
use meridian_kvapi::{KvError, RangeDescriptor, ReplicaDescriptor, Request};
use meridian_kvclient::ClientError;
use meridian_placement::records::{default_zone_key, encode_zone_config};
use tracing::info;

use crate::error::ServerError;
use crate::ident::{self, StoreIdent};
use crate::member::Member;
use crate::node::Node;
use crate::rpc::{ClusterInfo, ClusterInfoRpc, InitError};
use crate::system::{self, FIRST_RANGE_ID};
use crate::zones;

/// The range of everything above the catalog, created at bootstrap.
const FIRST_DATA_RANGE_ID: u64 = 2;

/// The catalog range, created at bootstrap. Its id is above the first
/// data range's because that one's id predates it.
const CATALOG_RANGE_ID: u64 = 3;

/// The last range id the bootstrap uses.
pub(crate) const LAST_BOOTSTRAP_RANGE_ID: u64 = CATALOG_RANGE_ID;

impl Node {
    /// Answers `InitRpc`: bootstraps unless the `--join` nodes already
    /// form a cluster.
    pub(crate) async fn init(&self) -> Result<ClusterInfo, InitError> {
        self.refuse_if_joined_elsewhere().await?;
        self.bootstrap().await.map_err(|e| match e {
            ServerError::Init(refusal) => refusal,
            other => InitError::Failed(other.to_string()),
        })
    }

    /// Bootstraps a new cluster with this node as node 1: the first range
    /// (meta and system keys), the catalog range and one range for
    /// everything else.
    pub async fn bootstrap(&self) -> Result<ClusterInfo, ServerError> {
        let _guard = self.inner.become_member.lock().await;
        if let Some(member) = self.member() {
            return Err(InitError::AlreadyInitialized {
                cluster_id: member.ident.cluster_id,
            }
            .into());
        }
        if let Some(existing) = ident::read(&self.inner.config.store)? {
            return Err(InitError::StoreInitialized {
                cluster_id: existing.cluster_id,
            }
            .into());
        }
        let ident = StoreIdent {
            cluster_id: ident::new_cluster_id(),
            node_id: 1,
        };
        let member = self.become_member(ident.clone()).await?;
        let (catalog_start, catalog_end) = CATALOG_SPAN;
        let range = |range_id, start: &[u8], end: &[u8]| RangeDescriptor {
            range_id,
            start_key: start.to_vec(),
            end_key: end.to_vec(),
            replicas: vec![ReplicaDescriptor::voter(1)],
            generation: 0,
        };
        let first = range(FIRST_RANGE_ID, MIN_KEY, catalog_start);
        member.store.bootstrap_range(&first).await?;
        member
            .store
            .bootstrap_range(&range(CATALOG_RANGE_ID, catalog_start, catalog_end))
            .await?;
        member
            .store
            .bootstrap_range(&range(FIRST_DATA_RANGE_ID, catalog_end, MAX_KEY))
            .await?;
        self.inner.first_range.set(Some(first));
        self.ensure_bootstrap_records(&member).await?;
        // The identity last: a store without one is bootstrapped again by
        // the next `init` (every step above is idempotent).
        ident::write(&self.inner.config.store, &ident)?;
        self.inner.bootstrapped.store(true, Ordering::SeqCst);
        info!(cluster = %ident.cluster_id, "cluster bootstrapped");
        Ok(self.cluster_info())
    }

    /// Refuses `init` on a node whose `--join` nodes already form a
    /// cluster: it would bootstrap a second one beside it.
    async fn refuse_if_joined_elsewhere(&self) -> Result<(), InitError> {
        for addr in self.other_join_addresses() {
            let info = self
                .inner
                .transport
                .call_addr::<ClusterInfoRpc>(addr, &(), Duration::from_secs(2))
                .await;
            if let Ok(ClusterInfo {
                cluster_id: Some(cluster_id),
                ..
            }) = info
            {
                return Err(InitError::JoinNodeInitialized {
                    cluster_id,
                    addr: addr.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The records node 1 writes at bootstrap; idempotent, so a node 1
    /// that crashed half-way through writes the rest at restart.
    pub(crate) async fn ensure_bootstrap_records(
        &self,
        member: &Member,
    ) -> Result<(), ServerError> {
        let ds = &member.ds;
        for (name, value) in [
            (system::NODE_ID_COUNTER, 1u64),
            (system::RANGE_ID_COUNTER, LAST_BOOTSTRAP_RANGE_ID),
        ] {
            let put = Request::ConditionalPut {
                key: system::counter_key(name),
                value: value.to_be_bytes().to_vec(),
                expected: None,
            };
            match ds.send(vec![put]).await {
                Ok(_) | Err(ClientError::Kv(KvError::ConditionFailed { .. })) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // The cluster's default zone config, from node 1's flags: from now
        // on `meridian zone set --default` changes it, whatever flags other
        // nodes start with.
        let config = &self.inner.config;
        let root = zones::root_config(config);
        let put = Request::ConditionalPut {
            key: default_zone_key(),
            value: encode_zone_config(&root),
            expected: None,
        };
        match ds.send(vec![put]).await {
            Ok(_) | Err(ClientError::Kv(KvError::ConditionFailed { .. })) => {}
            Err(e) => return Err(e.into()),
        }
        system::put_json(ds, system::node_key(1), &self.descriptor(1)).await?;
        for range_id in [FIRST_RANGE_ID, CATALOG_RANGE_ID, FIRST_DATA_RANGE_ID] {
            if let Some(replica) = member.store.replica(range_id) {
                system::update_meta(ds, &replica.descriptor()).await?;
            }
        }
        Ok(())
    }
}
