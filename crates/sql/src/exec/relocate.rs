//! `ALTER TABLE t SET LOCALITY` to or from REGIONAL BY ROW: a change of
//! the table's key layout. A REGIONAL BY ROW table's region column leads
//! its primary key and every index, so every key of the table changes:
//! the statement reads the rows, deletes their keys under the old
//! descriptor and writes them under the new one, all in its own
//! transaction together with the descriptor and the zone records, so
//! readers see the table wholly before or wholly after.
//!
//! - **To REGIONAL BY ROW**: the region column is added (hidden,
//!   `region`, unless `AS col` names a string column of the table); each
//!   existing row gets its default, evaluated at the gateway as an
//!   INSERT there would (the gateway's region if the database has it,
//!   else the primary region). Rows with a named column keep their value,
//!   which must name a region of the database.
//! - **From REGIONAL BY ROW**: the region column leaves the front of the
//!   keys; the column itself stays (hidden if it was), so nothing stored
//!   is lost and a later change back finds it. The visible keys were
//!   unique across regions already, so the new keys cannot collide.
//!
//! Not online: the whole table is rewritten in one transaction, which
//! holds every row in memory and conflicts with concurrent writers of the
//! table (they retry), like the rest of Meridian's DDL.
//!
//! Not here: which locality changes need this (`locality::set_locality`),
//! the zone records (`zones`).

use super::alter::bind_default;
use super::ddl::read_all;
use super::eval::eval;
use super::locality::{self, apply_to_new_table};
use super::write::{assign, rewrite_rows};
use super::ExecContext;
use crate::catalog::{DatabaseDescriptor, Locality, TableDescriptor};
use crate::error::SqlError;
use crate::parser::LocalitySpec;
use crate::types::Datum;

/// Gives `table` the locality `spec` (to or from REGIONAL BY ROW), moving
/// its rows to the new layout in the statement's transaction. Returns the
/// new descriptor, not yet written.
pub(super) async fn relocate(
    ctx: &ExecContext<'_>,
    database: &DatabaseDescriptor,
    table: &TableDescriptor,
    spec: &LocalitySpec,
    locality: Locality,
) -> Result<TableDescriptor, SqlError> {
    let rows = read_all(ctx, table).await?;
    let mut moved = table.clone();
    // Leaving REGIONAL BY ROW, the rows stay as they are (`None`): only
    // their keys change.
    let new_rows = if matches!(locality, Locality::RegionalByRow { .. }) {
        // From one region column to another (`AS col`): the old one
        // leaves the keys first.
        drop_region_prefix(&mut moved);
        let columns_before = moved.columns.len();
        apply_to_new_table(database, &mut moved, Some(spec))?;
        let added = moved.columns[columns_before..].first().cloned();
        let default = match &added {
            Some(column) => bind_default(column)?,
            None => None,
        };
        let row_id = || ctx.engine.unique_row_id();
        let env = ctx.env(&[], &row_id, &[]);
        let mut new_rows = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut row = row.clone();
            if added.is_some() {
                row.push(match &default {
                    Some(e) => eval(e, &[], &env)?,
                    None => Datum::Null,
                });
            }
            new_rows.push(assign(&moved, row)?);
        }
        locality::check_regions(&moved, database.multi_region.as_ref(), &new_rows)?;
        Some(new_rows)
    } else {
        drop_region_prefix(&mut moved);
        moved.locality = Some(locality);
        None
    };
    let new_rows = new_rows.as_deref().unwrap_or(&rows);
    rewrite_rows(ctx, (table, &rows), (&moved, new_rows)).await?;
    Ok(moved)
}

/// Takes a REGIONAL BY ROW table's region column off the front of its
/// primary key and indexes (an index of the region column alone keeps
/// it).
fn drop_region_prefix(table: &mut TableDescriptor) {
    let Some(id) = table
        .region_column()
        .and_then(|name| table.column(name).ok())
        .map(|c| c.id)
    else {
        return;
    };
    for index in std::iter::once(&mut table.primary_index).chain(table.indexes.iter_mut()) {
        if index.columns.len() > 1 && index.columns[0].0 == id {
            index.columns.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{descriptor_for_tests, IndexDirection};

    #[test]
    fn leaving_regional_by_row_takes_the_region_off_every_key() {
        let mut table = descriptor_for_tests();
        table.locality = Some(Locality::RegionalByRow {
            column: "name".into(),
        });
        table
            .primary_index
            .columns
            .insert(0, (2, IndexDirection::Asc));
        drop_region_prefix(&mut table);
        assert_eq!(table.primary_index.columns, vec![(1, IndexDirection::Asc)]);
    }
}
