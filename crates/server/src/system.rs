//! Records in the first range: node descriptors, liveness, id counters,
//! and the meta records that address every range.
//!
//! | key | value |
//! |---|---|
//! | `system_key("node", id BE)` | [`NodeDescriptor`] (JSON) |
//! | `system_key("liveness", id BE)` | [`LivenessRecord`] (JSON) |
//! | `system_key("counter", name)` | the last id handed out, u64 BE |
//! | `meta_key(end_key)` | the range's descriptor (`kvapi::wire`) |
//!
//! Not here: who writes them and when (`bootstrap`, `join`, `liveness`,
//! the queues).

use meridian_keys::space::{meta_key, prefix_end, system_key};
use meridian_kvapi::wire::{decode_meta_value, encode_meta_value};
use meridian_kvapi::{KvError, NodeId, RangeDescriptor, RangeId, Request, Response};
use meridian_kvclient::{ClientError, DistSender};
use meridian_transport::Locality;
use serde::{Deserialize, Serialize};

/// The first range: meta and system keys (`[MIN, 0x04)`). It never
/// splits.
pub const FIRST_RANGE_ID: RangeId = 1;

/// A node as the cluster knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDescriptor {
    pub node_id: NodeId,
    /// QUIC address (UDP).
    pub address: String,
    pub http_address: Option<String>,
    pub locality: Locality,
}

/// A node's liveness: valid until `expiration_nanos` (HLC wall time);
/// `epoch` grows with every restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LivenessRecord {
    pub node_id: NodeId,
    pub epoch: u64,
    pub expiration_nanos: u64,
}

pub fn node_key(node_id: NodeId) -> Vec<u8> {
    system_key(b"node", &node_id.to_be_bytes())
}

pub fn node_prefix() -> Vec<u8> {
    system_key(b"node", &[])
}

pub fn liveness_key(node_id: NodeId) -> Vec<u8> {
    system_key(b"liveness", &node_id.to_be_bytes())
}

pub fn liveness_prefix() -> Vec<u8> {
    system_key(b"liveness", &[])
}

pub fn counter_key(name: &str) -> Vec<u8> {
    system_key(b"counter", name.as_bytes())
}

pub const NODE_ID_COUNTER: &str = "node_id";
pub const RANGE_ID_COUNTER: &str = "range_id";

/// Hands out the next id of counter `name`, starting from `at_least` if
/// the counter is lower (or missing).
pub async fn next_id(ds: &DistSender, name: &str, at_least: u64) -> Result<u64, ClientError> {
    let key = counter_key(name);
    loop {
        let current = ds.get(&key).await?;
        let last = current
            .as_deref()
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_be_bytes);
        let next = (last + 1).max(at_least);
        let put = Request::ConditionalPut {
            key: key.clone(),
            value: next.to_be_bytes().to_vec(),
            expected: current,
        };
        match ds.send(vec![put]).await {
            Ok(_) => return Ok(next),
            Err(ClientError::Kv(KvError::ConditionFailed { .. })) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Writes `descriptor`'s meta record unless the record there is of the
/// same or a newer generation. Concurrent writers race through a
/// conditional put, so a newer record is never overwritten by an older one.
pub async fn update_meta(ds: &DistSender, descriptor: &RangeDescriptor) -> Result<(), ClientError> {
    let key = meta_key(&descriptor.end_key);
    loop {
        let current = ds.get(&key).await?;
        if let Some(existing) = current.as_deref().and_then(decode_meta_value) {
            if existing.generation > descriptor.generation
                || (existing.generation == descriptor.generation
                    && existing.range_id == descriptor.range_id)
            {
                return Ok(());
            }
        }
        let put = Request::ConditionalPut {
            key: key.clone(),
            value: encode_meta_value(descriptor),
            expected: current,
        };
        match ds.send(vec![put]).await {
            Ok(_) => return Ok(()),
            Err(ClientError::Kv(KvError::ConditionFailed { .. })) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Every meta record, in key order.
pub async fn all_meta(ds: &DistSender) -> Result<Vec<RangeDescriptor>, ClientError> {
    let start = meta_key(&[]);
    let end = prefix_end(&start).expect("meta prefix has an end");
    let rows = ds.scan(&start, &end, 0).await?;
    Ok(rows
        .iter()
        .filter_map(|(_, v)| decode_meta_value(v))
        .collect())
}

/// Every record under `prefix`, decoded from JSON (undecodable ones skipped).
pub async fn scan_json<T: for<'de> Deserialize<'de>>(
    ds: &DistSender,
    prefix: &[u8],
) -> Result<Vec<T>, ClientError> {
    let end = prefix_end(prefix).expect("system prefixes have an end");
    let rows = ds.scan(prefix, &end, 0).await?;
    Ok(rows
        .iter()
        .filter_map(|(_, v)| serde_json::from_slice(v).ok())
        .collect())
}

pub async fn put_json<T: Serialize>(
    ds: &DistSender,
    key: Vec<u8>,
    value: &T,
) -> Result<(), ClientError> {
    let value = serde_json::to_vec(value).expect("records serialize");
    ds.send(vec![Request::Put { key, value }]).await.map(|_| ())
}

/// Conditional put of a JSON record; `Ok(false)` when `expected` was not
/// the current value.
pub async fn cput_json<T: Serialize>(
    ds: &DistSender,
    key: Vec<u8>,
    value: &T,
    expected: Option<Vec<u8>>,
) -> Result<bool, ClientError> {
    let value = serde_json::to_vec(value).expect("records serialize");
    match ds
        .send(vec![Request::ConditionalPut {
            key,
            value,
            expected,
        }])
        .await
    {
        Ok(responses) => Ok(matches!(responses[..], [Response::ConditionalPut])),
        Err(ClientError::Kv(KvError::ConditionFailed { .. })) => Ok(false),
        Err(e) => Err(e),
    }
}
