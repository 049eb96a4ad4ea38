//! Descriptors: what the catalog records about a database, a table, its
//! columns and indexes. Column and index ids are never reused within a
//! table, so a dropped column's stored values are simply ignored.

use meridian_keys::encoding::Direction;
use meridian_placement::{MultiRegionSettings, ZoneConfig};
use serde::{Deserialize, Serialize};

use crate::error::{code, SqlError};
use crate::types::SqlType;

/// The id of every table's primary index.
pub const PRIMARY_INDEX_ID: u32 = 1;

/// The hidden column a table without a primary key gets.
pub const ROWID_COLUMN: &str = "rowid";

/// The hidden column of a REGIONAL BY ROW table (CockroachDB's
/// `crdb_region`): the row's home region, first in every index key.
pub const REGION_COLUMN: &str = "region";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseDescriptor {
    pub id: u64,
    pub name: String,
    /// Regions, primary region, survival goal and placement; `None`: not
    /// a multi-region database.
    #[serde(default)]
    pub multi_region: Option<MultiRegionSettings>,
    /// `ALTER DATABASE ... CONFIGURE ZONE USING`: what its tables inherit
    /// under their own settings.
    #[serde(default)]
    pub zone_config: Option<ZoneConfig>,
}

impl DatabaseDescriptor {
    pub fn new(id: u64, name: impl Into<String>) -> DatabaseDescriptor {
        DatabaseDescriptor {
            id,
            name: name.into(),
            multi_region: None,
            zone_config: None,
        }
    }
}

/// A table's locality in a multi-region database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Locality {
    /// Present-time reads from every region; writes pay for it.
    Global,
    /// Homed in one region (`None`: the database's primary region).
    RegionalByTable(Option<String>),
    /// Each row homed in the region its `column` names; that column leads
    /// every index key, so each region's rows are one span per index.
    RegionalByRow { column: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDescriptor {
    pub id: u32,
    pub name: String,
    pub ty: SqlType,
    pub nullable: bool,
    /// The DEFAULT expression as SQL text.
    pub default: Option<String>,
    /// Hidden columns (the row id) are left out of `SELECT *`.
    pub hidden: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDescriptor {
    pub id: u32,
    pub name: String,
    pub unique: bool,
    /// Key columns by column id, with their direction.
    pub columns: Vec<(u32, IndexDirection)>,
}

/// A key column's direction (serializable twin of the key encoding's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexDirection {
    Asc,
    Desc,
}

impl From<IndexDirection> for Direction {
    fn from(d: IndexDirection) -> Direction {
        match d {
            IndexDirection::Asc => Direction::Ascending,
            IndexDirection::Desc => Direction::Descending,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDescriptor {
    pub id: u64,
    pub database_id: u64,
    pub name: String,
    /// Bumped by every schema change.
    pub version: u64,
    pub columns: Vec<ColumnDescriptor>,
    pub next_column_id: u32,
    pub primary_index: IndexDescriptor,
    pub indexes: Vec<IndexDescriptor>,
    pub next_index_id: u32,
    /// Set in multi-region databases (`None` elsewhere).
    #[serde(default)]
    pub locality: Option<Locality>,
    /// `ALTER TABLE ... CONFIGURE ZONE USING`: fields set on top of what
    /// the locality asks for.
    #[serde(default)]
    pub zone_config: Option<ZoneConfig>,
}

impl TableDescriptor {
    /// Whether every replica of the table can serve present-time reads (a
    /// GLOBAL table): its reads go to the nearest replica first.
    pub fn reads_from_nearest(&self) -> bool {
        matches!(self.locality, Some(Locality::Global))
    }

    /// The region column of a REGIONAL BY ROW table.
    pub fn region_column(&self) -> Option<&str> {
        match &self.locality {
            Some(Locality::RegionalByRow { column }) => Some(column),
            _ => None,
        }
    }

    /// The position of column `name` among the columns.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn column(&self, name: &str) -> Result<&ColumnDescriptor, SqlError> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| SqlError::undefined_column(name))
    }

    /// The position of the column with id `id`.
    pub fn position_of(&self, id: u32) -> Option<usize> {
        self.columns.iter().position(|c| c.id == id)
    }

    /// Positions of the primary key's columns, in key order.
    pub fn primary_key_positions(&self) -> Vec<usize> {
        self.index_positions(&self.primary_index)
    }

    /// Positions of `index`'s key columns, in key order.
    pub fn index_positions(&self, index: &IndexDescriptor) -> Vec<usize> {
        index
            .columns
            .iter()
            .map(|(id, _)| self.position_of(*id).expect("index column exists"))
            .collect()
    }

    pub fn index(&self, name: &str) -> Option<&IndexDescriptor> {
        self.indexes.iter().find(|i| i.name == name)
    }

    /// Checks the invariants a descriptor must keep before it is written.
    pub fn validate(&self) -> Result<(), SqlError> {
        let mut names = std::collections::HashSet::new();
        for column in &self.columns {
            if !names.insert(column.name.as_str()) {
                return Err(SqlError::new(
                    code::DUPLICATE_COLUMN,
                    format!("column \"{}\" specified more than once", column.name),
                ));
            }
        }
        for index in std::iter::once(&self.primary_index).chain(&self.indexes) {
            for (id, _) in &index.columns {
                let column = self
                    .columns
                    .iter()
                    .find(|c| c.id == *id)
                    .ok_or_else(|| SqlError::internal("index names a missing column"))?;
                if !column.ty.is_key_encodable() {
                    return Err(SqlError::unsupported(format!(
                        "a column of type {} in a key or index (column \"{}\")",
                        column.ty, column.name
                    )));
                }
            }
        }
        Ok(())
    }
}
