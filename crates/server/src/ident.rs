//! The store's identity: which cluster it belongs to and which node it is.
//! Kept in `IDENT.json` in the store directory, written once (atomically)
//! when the node bootstraps or joins.
//!
//! Not here: deciding which identity a store gets (`bootstrap`, `join`).

use std::fs;
use std::path::Path;

use meridian_kvapi::NodeId;
use serde::{Deserialize, Serialize};

use crate::error::ServerError;

const IDENT_FILE: &str = "IDENT.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreIdent {
    pub cluster_id: String,
    pub node_id: NodeId,
}

fn store_error(dir: &Path, reason: impl std::fmt::Display) -> ServerError {
    ServerError::Store {
        path: dir.display().to_string(),
        reason: reason.to_string(),
    }
}

/// The store's identity, `None` for a store that never joined a cluster.
pub fn read(dir: &Path) -> Result<Option<StoreIdent>, ServerError> {
    let path = dir.join(IDENT_FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| store_error(dir, format!("{IDENT_FILE} is corrupt: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(store_error(dir, e)),
    }
}

/// Records the store's identity durably.
pub fn write(dir: &Path, ident: &StoreIdent) -> Result<(), ServerError> {
    let tmp = dir.join(format!("{IDENT_FILE}.tmp"));
    let bytes = serde_json::to_vec_pretty(ident).expect("ident serializes");
    let write = || -> std::io::Result<()> {
        let file = fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut &file, &bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, dir.join(IDENT_FILE))?;
        fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| store_error(dir, e))
}

/// A new random cluster id.
pub fn new_cluster_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}
