//! KV client.
