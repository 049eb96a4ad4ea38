//! Reading and writing descriptors in a transaction.
//!
//! Descriptors live in the catalog range (`keys::space::CATALOG_SPAN`).
//! In a multi-region cluster every read goes to the nearest replica
//! first: there that range has a replica on every node and closes
//! timestamps ahead of the present (`placement::catalog`), so the gateway
//! itself serves a statement's descriptors; a replica that cannot (one
//! behind) sends the read on to the leaseholder. In a cluster of one
//! region the catalog is an ordinary range and reads go to its
//! leaseholder directly: a nearest replica could not serve them.

use meridian_keys::encoding::{encode_value, Direction, Value};
use meridian_keys::space::{catalog_key, prefix_end};
use meridian_kvclient::txn::Txn;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::descriptor::{DatabaseDescriptor, TableDescriptor};
use crate::error::{code, SqlError};

/// Databases every cluster has without creating them.
const BUILT_IN_DATABASES: &[(&str, u64)] = &[("defaultdb", 1), ("postgres", 2)];

/// Ids below this are reserved for built-in objects.
const FIRST_USER_ID: u64 = 100;

/// The catalog as one transaction sees it.
pub struct Catalog<'a> {
    txn: &'a Txn,
    /// Whether reads go to the nearest replica first.
    nearest: bool,
}

impl<'a> Catalog<'a> {
    /// The catalog read at the leaseholder.
    pub fn new(txn: &'a Txn) -> Catalog<'a> {
        Catalog {
            txn,
            nearest: false,
        }
    }

    /// The catalog read from the nearest replica first (see the module
    /// documentation).
    pub fn reading_nearest(txn: &'a Txn) -> Catalog<'a> {
        Catalog { txn, nearest: true }
    }

    async fn read_batch(
        &self,
        requests: Vec<meridian_kvapi::Request>,
    ) -> Result<Vec<meridian_kvapi::Response>, SqlError> {
        Ok(match self.nearest {
            true => self.txn.read_batch_from_nearest(requests).await?,
            false => self.txn.read_batch(requests).await?,
        })
    }

    pub async fn database(&self, name: &str) -> Result<Option<DatabaseDescriptor>, SqlError> {
        let stored = self.read(&database_key(name)).await?;
        Ok(stored.or_else(|| built_in_database(name)))
    }

    /// Writes a changed database (a built-in one gets its first record).
    pub async fn update_database(&self, database: &DatabaseDescriptor) -> Result<(), SqlError> {
        self.write(&database_key(&database.name), database).await
    }

    /// The database `name`, or 3D000.
    pub async fn require_database(&self, name: &str) -> Result<DatabaseDescriptor, SqlError> {
        self.database(name)
            .await?
            .ok_or_else(|| unknown_database(name))
    }

    pub async fn databases(&self) -> Result<Vec<DatabaseDescriptor>, SqlError> {
        let mut out: Vec<DatabaseDescriptor> = self
            .scan::<DatabaseDescriptor>(&catalog_key(b"sql/db", b""))
            .await?;
        for (name, id) in BUILT_IN_DATABASES {
            if !out.iter().any(|d| d.name == *name) {
                out.push(DatabaseDescriptor::new(*id, *name));
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Records a new database (plain: multi-region settings come after,
    /// through [`Catalog::update_database`]).
    pub async fn create_database(&self, name: &str) -> Result<DatabaseDescriptor, SqlError> {
        if self.database(name).await?.is_some() {
            return Err(SqlError::new(
                code::DUPLICATE_DATABASE,
                format!("database \"{name}\" already exists"),
            ));
        }
        let descriptor = DatabaseDescriptor::new(self.next_id().await?, name);
        self.write(&database_key(name), &descriptor).await?;
        Ok(descriptor)
    }

    pub async fn drop_database(&self, database: &DatabaseDescriptor) -> Result<(), SqlError> {
        if BUILT_IN_DATABASES.iter().any(|(n, _)| *n == database.name) {
            return Err(SqlError::unsupported(format!(
                "dropping the built-in database \"{}\"",
                database.name
            )));
        }
        if !self.tables(database.id).await?.is_empty() {
            return Err(SqlError::new(
                code::DEPENDENT_OBJECTS_STILL_EXIST,
                format!(
                    "database \"{}\" is not empty: drop its tables first",
                    database.name
                ),
            ));
        }
        self.txn.delete(&database_key(&database.name)).await?;
        Ok(())
    }

    pub async fn table(
        &self,
        database_id: u64,
        name: &str,
    ) -> Result<Option<TableDescriptor>, SqlError> {
        self.read(&table_key(database_id, name)).await
    }

    /// The tables `names` of database `database_id` (`None` for a missing
    /// one), read in one batch (none for no names).
    pub async fn tables_named(
        &self,
        database_id: u64,
        names: &[String],
    ) -> Result<Vec<Option<TableDescriptor>>, SqlError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let requests = names
            .iter()
            .map(|n| meridian_kvapi::Request::Get {
                key: table_key(database_id, n),
            })
            .collect();
        let responses = self.read_batch(requests).await?;
        responses
            .into_iter()
            .map(|r| match r {
                meridian_kvapi::Response::Get { value: Some(bytes) } => decode(&bytes).map(Some),
                meridian_kvapi::Response::Get { value: None } => Ok(None),
                other => Err(SqlError::internal(format!("unexpected response {other:?}"))),
            })
            .collect()
    }

    /// The database `name` and, if its id is `guessed_id`, its tables
    /// `names` (`None` for a missing one), all read in one batch: a
    /// statement's descriptors cost one round trip to the system range,
    /// not two, whenever the session's last database id still holds. The
    /// tables are `None` when the guess was wrong (a database dropped and
    /// created again under the name): read them by the right id then.
    pub async fn database_and_tables(
        &self,
        name: &str,
        guessed_id: u64,
        names: &[String],
    ) -> Result<
        (
            Option<DatabaseDescriptor>,
            Option<Vec<Option<TableDescriptor>>>,
        ),
        SqlError,
    > {
        let requests = std::iter::once(database_key(name))
            .chain(names.iter().map(|n| table_key(guessed_id, n)))
            .map(|key| meridian_kvapi::Request::Get { key })
            .collect();
        let mut values = self
            .read_batch(requests)
            .await?
            .into_iter()
            .map(|r| match r {
                meridian_kvapi::Response::Get { value } => Ok(value),
                other => Err(SqlError::internal(format!("unexpected response {other:?}"))),
            })
            .collect::<Result<Vec<_>, SqlError>>()?
            .into_iter();
        let database = match values.next().flatten() {
            Some(bytes) => Some(decode::<DatabaseDescriptor>(&bytes)?),
            None => built_in_database(name),
        };
        if database.as_ref().map(|d| d.id) != Some(guessed_id) {
            return Ok((database, None));
        }
        let tables = values
            .map(|value| value.map(|bytes| decode(&bytes)).transpose())
            .collect::<Result<Vec<_>, SqlError>>()?;
        Ok((database, Some(tables)))
    }

    /// The table `name` of `database`, or 42P01.
    pub async fn require_table(
        &self,
        database: &str,
        name: &str,
    ) -> Result<TableDescriptor, SqlError> {
        let db = self.require_database(database).await?;
        self.table(db.id, name)
            .await?
            .ok_or_else(|| SqlError::undefined_table(name))
    }

    pub async fn tables(&self, database_id: u64) -> Result<Vec<TableDescriptor>, SqlError> {
        self.scan(&table_key_prefix(database_id)).await
    }

    /// Records a new table (its id already allocated).
    pub async fn create_table(&self, table: &TableDescriptor) -> Result<(), SqlError> {
        table.validate()?;
        if self.table(table.database_id, &table.name).await?.is_some() {
            return Err(SqlError::new(
                code::DUPLICATE_TABLE,
                format!("relation \"{}\" already exists", table.name),
            ));
        }
        self.write(&table_key(table.database_id, &table.name), table)
            .await
    }

    /// Writes a changed table, one version up.
    pub async fn update_table(&self, table: &mut TableDescriptor) -> Result<(), SqlError> {
        table.validate()?;
        table.version += 1;
        self.write(&table_key(table.database_id, &table.name), table)
            .await
    }

    pub async fn drop_table(&self, table: &TableDescriptor) -> Result<(), SqlError> {
        self.txn
            .delete(&table_key(table.database_id, &table.name))
            .await?;
        Ok(())
    }

    /// A new id for a database or table; never handed out twice.
    pub async fn next_id(&self) -> Result<u64, SqlError> {
        let key = catalog_key(b"sql/id", b"");
        let last = match self.txn.get(&key).await? {
            Some(bytes) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| SqlError::internal("the id counter is corrupt"))?,
            None => FIRST_USER_ID - 1,
        };
        let next = last + 1;
        self.txn.put(&key, next.to_string().as_bytes()).await?;
        Ok(next)
    }

    async fn read<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, SqlError> {
        let get = meridian_kvapi::Request::Get { key: key.to_vec() };
        match self.read_batch(vec![get]).await?.pop() {
            Some(meridian_kvapi::Response::Get { value: None }) => Ok(None),
            Some(meridian_kvapi::Response::Get { value: Some(bytes) }) => decode(&bytes).map(Some),
            other => Err(SqlError::internal(format!("unexpected response {other:?}"))),
        }
    }

    async fn scan<T: DeserializeOwned>(&self, prefix: &[u8]) -> Result<Vec<T>, SqlError> {
        let end = prefix_end(prefix).expect("catalog prefixes end");
        let scan = meridian_kvapi::Request::Scan {
            start: prefix.to_vec(),
            end,
            max_rows: 0,
        };
        let rows = match self.read_batch(vec![scan]).await?.pop() {
            Some(meridian_kvapi::Response::Scan { rows, .. }) => rows,
            other => return Err(SqlError::internal(format!("unexpected response {other:?}"))),
        };
        rows.iter().map(|(_, v)| decode(v)).collect()
    }

    async fn write<T: Serialize>(&self, key: &[u8], value: &T) -> Result<(), SqlError> {
        let bytes = serde_json::to_vec(value).map_err(|e| SqlError::internal(e.to_string()))?;
        self.txn.put(key, &bytes).await?;
        Ok(())
    }
}

/// 3D000: no database `name`.
pub fn unknown_database(name: &str) -> SqlError {
    SqlError::new(
        code::INVALID_CATALOG_NAME,
        format!("database \"{name}\" does not exist"),
    )
}

/// A built-in database that has no record of its own yet.
fn built_in_database(name: &str) -> Option<DatabaseDescriptor> {
    BUILT_IN_DATABASES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(name, id)| DatabaseDescriptor::new(*id, *name))
}

/// The id a session guesses for database `name` before reading it: a
/// built-in database's, else none (any id: the guess is checked).
pub fn built_in_database_id(name: &str) -> Option<u64> {
    built_in_database(name).map(|d| d.id)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, SqlError> {
    serde_json::from_slice(bytes)
        .map_err(|e| SqlError::internal(format!("a catalog record does not decode: {e}")))
}

fn database_key(name: &str) -> Vec<u8> {
    let mut suffix = Vec::new();
    encode_value(
        &mut suffix,
        &Value::String(name.into()),
        Direction::Ascending,
    );
    catalog_key(b"sql/db", &suffix)
}

fn table_key_prefix(database_id: u64) -> Vec<u8> {
    let mut suffix = Vec::new();
    encode_value(
        &mut suffix,
        &Value::Int(database_id as i64),
        Direction::Ascending,
    );
    catalog_key(b"sql/tbl", &suffix)
}

fn table_key(database_id: u64, name: &str) -> Vec<u8> {
    let mut key = table_key_prefix(database_id);
    encode_value(&mut key, &Value::String(name.into()), Direction::Ascending);
    key
}
