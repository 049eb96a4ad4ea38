//! The catalog: databases and tables as versioned descriptors in the
//! system key space, read and written inside the statement's transaction
//! (so a schema change is as serializable as any write).
//!
//! Layout (all under `keys::space::catalog_key`, in the catalog range):
//! - `sql/db` + name -> [`DatabaseDescriptor`] (JSON);
//! - `sql/tbl` + int(database id) + string(name) -> [`TableDescriptor`];
//! - `sql/id` -> the last id handed out (tables and databases share it).
//!
//! `defaultdb` and `postgres` are built in (ids 1 and 2) and need no
//! record until they are made multi-region. A transaction keeps the descriptors it read ([`TxnDescriptors`]);
//! not yet: a per-node cache across transactions with leases (every
//! transaction reads its tables' descriptors, in one batch per statement,
//! from the nearest replica of the catalog range: in a multi-region
//! cluster, one in the gateway's region).

mod cache;
mod descriptor;
mod store;

pub use cache::TxnDescriptors;

pub use descriptor::{
    ColumnDescriptor, DatabaseDescriptor, IndexDescriptor, IndexDirection, Locality,
    TableDescriptor, PRIMARY_INDEX_ID, REGION_COLUMN, ROWID_COLUMN,
};
pub use store::{unknown_database, Catalog};

/// A table `t (id INT8 PRIMARY KEY, name TEXT, score FLOAT8)` for unit
/// tests.
#[cfg(test)]
pub(crate) fn descriptor_for_tests() -> TableDescriptor {
    use crate::types::SqlType;
    let column = |id: u32, name: &str, ty: SqlType| ColumnDescriptor {
        id,
        name: name.into(),
        ty,
        nullable: id != 1,
        default: None,
        hidden: false,
    };
    TableDescriptor {
        id: 100,
        database_id: 1,
        name: "t".into(),
        version: 1,
        columns: vec![
            column(1, "id", SqlType::Int8),
            column(2, "name", SqlType::Text),
            column(3, "score", SqlType::Float8),
        ],
        next_column_id: 4,
        primary_index: IndexDescriptor {
            id: PRIMARY_INDEX_ID,
            name: "t_pkey".into(),
            unique: true,
            columns: vec![(1, IndexDirection::Asc)],
        },
        indexes: Vec::new(),
        next_index_id: 2,
        locality: None,
        zone_config: None,
    }
}
