//! Rewrites of the parts of psql's catalog queries the planner cannot run
//! yet: correlated subqueries and arrays. Each fragment is replaced, where
//! it occurs (whitespace may differ), by an expression over the columns
//! Meridian's pg_catalog tables carry for the purpose (see
//! `exec::virtual_tables`). Statements without a fragment pass unchanged.
//!
//! The fragments are psql 15's (`\d TABLE`, `\d+ TABLE`, `\du`). Once
//! correlated subqueries and arrays exist, this file goes.

use std::borrow::Cow;

/// (fragment as psql sends it, replacement).
const REWRITES: &[(&str, &str)] = &[
    // \d TABLE: a column's default.
    (
        "(SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)
   FROM pg_catalog.pg_attrdef d
   WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef)",
        "a.meridian_default",
    ),
    // \d TABLE: a column's collation when not its type's (never: one
    // collation).
    (
        "(SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t
   WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation)",
        "NULL::pg_catalog.name",
    ),
    // \d+ TABLE: storage options, with the TOAST table's (none).
    (
        "c.reloptions || array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x)",
        "c.reloptions",
    ),
    // \d TABLE: the roles a row-level policy applies to (no policies).
    (
        "array(select rolname from pg_catalog.pg_roles where oid = any (pol.polroles) order by 1)",
        "pol.polroles",
    ),
    // \d TABLE: the columns a publication publishes (no publications).
    (
        "(SELECT string_agg(attname, ', ')
           FROM pg_catalog.generate_series(0, pg_catalog.array_upper(pr.prattrs::pg_catalog.int2[], 1)) s,
                pg_catalog.pg_attribute
          WHERE attrelid = pr.prrelid AND attnum = prattrs[s])",
        "pr.prattrs",
    ),
    // \d INDEX: whether the index's constraint is deferrable, or
    // deferred (no constraint is).
    (
        "EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = i.indrelid AND conindid = i.indexrelid AND contype IN ('p','u','x') AND condeferrable)",
        "false",
    ),
    (
        "EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = i.indrelid AND conindid = i.indexrelid AND contype IN ('p','u','x') AND condeferred)",
        "false",
    ),
    // \du: the roles a role is a member of (none: no role memberships).
    (
        "ARRAY(SELECT b.rolname
        FROM pg_catalog.pg_auth_members m
        JOIN pg_catalog.pg_roles b ON (m.roleid = b.oid)
        WHERE m.member = r.oid)",
        "'{}'",
    ),
];

/// `sql` with every known fragment replaced.
pub fn rewrite(sql: &str) -> Cow<'_, str> {
    if !sql.contains("pg_catalog") {
        return Cow::Borrowed(sql);
    }
    let mut out = Cow::Borrowed(sql);
    for (fragment, replacement) in REWRITES {
        while let Some((start, end)) = find_loose(&out, fragment) {
            let mut s = String::with_capacity(out.len());
            s.push_str(&out[..start]);
            s.push_str(replacement);
            s.push_str(&out[end..]);
            out = Cow::Owned(s);
        }
    }
    out
}

/// Where `needle` occurs in `haystack`, a run of whitespace in `needle`
/// matching any run of whitespace: the byte range.
fn find_loose(haystack: &str, needle: &str) -> Option<(usize, usize)> {
    let first = needle.split_whitespace().next()?;
    let hay = haystack.as_bytes();
    let pin = needle.as_bytes();
    for (start, _) in haystack.match_indices(first) {
        let (mut h, mut n) = (start, 0);
        loop {
            if n == pin.len() {
                return Some((start, h));
            }
            if pin[n].is_ascii_whitespace() {
                if h >= hay.len() || !hay[h].is_ascii_whitespace() {
                    break;
                }
                while n < pin.len() && pin[n].is_ascii_whitespace() {
                    n += 1;
                }
                while h < hay.len() && hay[h].is_ascii_whitespace() {
                    h += 1;
                }
            } else if h < hay.len() && hay[h] == pin[n] {
                h += 1;
                n += 1;
            } else {
                break;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_are_replaced_whatever_the_whitespace() {
        let sql = "SELECT r.rolname, ARRAY(SELECT b.rolname FROM pg_catalog.pg_auth_members m \
                   JOIN pg_catalog.pg_roles b ON (m.roleid = b.oid)\n\tWHERE m.member = r.oid) \
                   as memberof FROM pg_catalog.pg_roles r";
        assert_eq!(
            rewrite(sql),
            "SELECT r.rolname, '{}' as memberof FROM pg_catalog.pg_roles r"
        );
    }

    #[test]
    fn other_statements_pass_unchanged() {
        for sql in [
            "SELECT 1",
            "SELECT * FROM pg_catalog.pg_class",
            "SELECT (SELECT 1 FROM pg_catalog.pg_attrdef d)",
        ] {
            assert!(matches!(rewrite(sql), Cow::Borrowed(s) if s == sql));
        }
    }
}
