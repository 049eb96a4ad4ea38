//! Errors of a node's life cycle.

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("store directory {path}: {reason}")]
    Store { path: String, reason: String },
    #[error("certificates: {0}")]
    Certs(#[from] meridian_transport::CertError),
    #[error("transport: {0}")]
    Transport(#[from] meridian_transport::TransportError),
    #[error("store: {0}")]
    KvServer(#[from] meridian_kvserver::store::StoreError),
    #[error("storage: {0}")]
    Storage(#[from] meridian_storage::StorageError),
    #[error("kv: {0}")]
    Client(#[from] meridian_kvclient::ClientError),
    #[error("{0}")]
    Refused(String),
    #[error("admin HTTP on {addr}: {reason}")]
    Http { addr: String, reason: String },
}
