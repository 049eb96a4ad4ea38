//! pg_catalog: the tables psql's `\d` family and drivers read. Tables,
//! their columns, indexes, defaults and primary keys come from the
//! descriptors; types, schemas, roles and access methods are fixed; the
//! rest exist empty (clients LEFT JOIN them).

use super::*;

const PG_CLASS: &str = "oid oid, relname name, relnamespace oid, reltype oid, reloftype oid, \
    relowner oid, relam oid, relfilenode oid, reltablespace oid, relpages int4, \
    reltuples float4, relallvisible int4, reltoastrelid oid, relhasindex bool, \
    relisshared bool, relpersistence char, relkind char, relnatts int2, relchecks int2, \
    relhasrules bool, relhastriggers bool, relhassubclass bool, relrowsecurity bool, \
    relforcerowsecurity bool, relispopulated bool, relreplident char, relispartition bool, \
    relrewrite oid, relfrozenxid int8, relminmxid int8, relacl text?, reloptions text?, \
    relpartbound text?, meridian_indexdef text?";

const PG_ATTRIBUTE: &str = "attrelid oid, attname name, atttypid oid, attstattarget int4, \
    attlen int2, attnum int2, attndims int4, attcacheoff int4, atttypmod int4, attbyval bool, \
    attalign char, attstorage char, attcompression char, attnotnull bool, atthasdef bool, \
    atthasmissing bool, attidentity char, attgenerated char, attisdropped bool, \
    attislocal bool, attinhcount int4, attcollation oid, attacl text?, attoptions text?, \
    attfdwoptions text?, attmissingval text?, meridian_default text?";

const PG_INDEX: &str = "indexrelid oid, indrelid oid, indnatts int2, indnkeyatts int2, \
    indisunique bool, indnullsnotdistinct bool, indisprimary bool, indisexclusion bool, \
    indimmediate bool, indisclustered bool, indisvalid bool, indcheckxmin bool, \
    indisready bool, indislive bool, indisreplident bool, indkey text, indcollation text, \
    indclass text, indoption text, indexprs text?, indpred text?, meridian_indexdef text?";

const PG_ATTRDEF: &str = "oid oid, adrelid oid, adnum int2, adbin text";

const PG_CONSTRAINT: &str = "oid oid, conname name, connamespace oid, contype char, \
    condeferrable bool, condeferred bool, convalidated bool, conrelid oid, contypid oid, \
    conindid oid, conparentid oid, confrelid oid, confupdtype char, confdeltype char, \
    confmatchtype char, conislocal bool, coninhcount int4, connoinherit bool, conkey text?, \
    confkey text?, conpfeqop text?, conppeqop text?, conffeqop text?, confdelsetcols text?, \
    conexclop text?, conbin text?, meridian_condef text?";

const PG_TYPE: &str = "oid oid, typname name, typnamespace oid, typowner oid, typlen int2, \
    typbyval bool, typtype char, typcategory char, typispreferred bool, typisdefined bool, \
    typdelim char, typrelid oid, typsubscript oid, typelem oid, typarray oid, typinput oid, \
    typoutput oid, typreceive oid, typsend oid, typmodin oid, typmodout oid, typanalyze oid, \
    typalign char, typstorage char, typnotnull bool, typbasetype oid, typtypmod int4, \
    typndims int4, typcollation oid, typdefaultbin text?, typdefault text?, typacl text?";

const PG_NAMESPACE: &str = "oid oid, nspname name, nspowner oid, nspacl text?";

const PG_DATABASE: &str = "oid oid, datname name, datdba oid, encoding int4, \
    datlocprovider char, datistemplate bool, datallowconn bool, datconnlimit int4, \
    datfrozenxid int8, datminmxid int8, dattablespace oid, datcollate text, datctype text, \
    daticulocale text?, datcollversion text?, datacl text?";

const PG_ROLES: &str = "oid oid, rolname name, rolsuper bool, rolinherit bool, \
    rolcreaterole bool, rolcreatedb bool, rolcanlogin bool, rolreplication bool, \
    rolconnlimit int4, rolpassword text, rolvaliduntil timestamptz?, rolbypassrls bool, \
    rolconfig text?";

const PG_USER: &str = "usename name, usesysid oid, usecreatedb bool, usesuper bool, \
    userepl bool, usebypassrls bool, passwd text, valuntil timestamptz?, useconfig text?";

const PG_AM: &str = "oid oid, amname name, amhandler oid, amtype char";

const PG_TABLESPACE: &str = "oid oid, spcname name, spcowner oid, spcacl text?, spcoptions text?";

const PG_COLLATION: &str = "oid oid, collname name, collnamespace oid, collowner oid, \
    collprovider char, collisdeterministic bool, collencoding int4, collcollate text?, \
    collctype text?, colliculocale text?, collversion text?";

const PG_TABLES: &str = "schemaname name, tablename name, tableowner name, tablespace name?, \
    hasindexes bool, hasrules bool, hastriggers bool, rowsecurity bool";

const PG_INDEXES: &str =
    "schemaname name, tablename name, indexname name, tablespace name?, indexdef text";

const PG_SETTINGS: &str = "name text, setting text, unit text?, category text, \
    short_desc text, extra_desc text?, context text, vartype text, source text, \
    min_val text?, max_val text?, enumvals text?, boot_val text?, reset_val text?, \
    sourcefile text?, sourceline int4?, pending_restart bool";

/// Tables that exist empty: clients join them, Meridian has none of
/// their objects.
const EMPTY: &[(&str, &str)] = &[
    (
        "pg_auth_members",
        "roleid oid, member oid, grantor oid, admin_option bool",
    ),
    (
        "pg_description",
        "objoid oid, classoid oid, objsubid int4, description text",
    ),
    (
        "pg_shdescription",
        "objoid oid, classoid oid, description text",
    ),
    (
        "pg_inherits",
        "inhrelid oid, inhparent oid, inhseqno int4, inhdetachpending bool",
    ),
    (
        "pg_policy",
        "oid oid, polname name, polrelid oid, polcmd char, polpermissive bool, \
         polroles text?, polqual text?, polwithcheck text?",
    ),
    (
        "pg_statistic_ext",
        "oid oid, stxrelid oid, stxname name, stxnamespace oid, stxowner oid, \
         stxstattarget int4, stxkeys text?, stxkind text?, stxexprs text?",
    ),
    (
        "pg_publication",
        "oid oid, pubname name, pubowner oid, puballtables bool, pubinsert bool, \
         pubupdate bool, pubdelete bool, pubtruncate bool, pubviaroot bool",
    ),
    (
        "pg_publication_rel",
        "oid oid, prpubid oid, prrelid oid, prqual text?, prattrs text?",
    ),
    (
        "pg_publication_namespace",
        "oid oid, pnpubid oid, pnnspid oid",
    ),
    (
        "pg_trigger",
        "oid oid, tgrelid oid, tgparentid oid, tgname name, tgfoid oid, tgtype int2, \
         tgenabled char, tgisinternal bool, tgconstrrelid oid, tgconstrindid oid, \
         tgconstraint oid, tgdeferrable bool, tginitdeferred bool, tgnargs int2, \
         tgattr text?, tgargs text?, tgqual text?, tgoldtable name?, tgnewtable name?",
    ),
    (
        "pg_rewrite",
        "oid oid, rulename name, ev_class oid, ev_type char, ev_enabled char, \
         is_instead bool, ev_qual text?, ev_action text?",
    ),
    (
        "pg_proc",
        "oid oid, proname name, pronamespace oid, proowner oid, prolang oid, \
         procost float4, prorows float4, provariadic oid, prosupport oid, prokind char, \
         prosecdef bool, proleakproof bool, proisstrict bool, proretset bool, \
         provolatile char, proparallel char, pronargs int2, pronargdefaults int2, \
         prorettype oid, proargtypes text, proallargtypes text?, proargmodes text?, \
         proargnames text?, proargdefaults text?, protrftypes text?, prosrc text, \
         probin text?, prosqlbody text?, proconfig text?, proacl text?",
    ),
    (
        "pg_extension",
        "oid oid, extname name, extowner oid, extnamespace oid, extrelocatable bool, \
         extversion text, extconfig text?, extcondition text?",
    ),
    (
        "pg_range",
        "rngtypid oid, rngsubtype oid, rngmultitypid oid, rngcollation oid, \
         rngsubopc oid, rngcanonical oid, rngsubdiff oid",
    ),
    (
        "pg_enum",
        "oid oid, enumtypid oid, enumsortorder float4, enumlabel name",
    ),
    (
        "pg_sequence",
        "seqrelid oid, seqtypid oid, seqstart int8, seqincrement int8, seqmax int8, \
         seqmin int8, seqcache int8, seqcycle bool",
    ),
    (
        "pg_sequences",
        "schemaname name, sequencename name, sequenceowner name, data_type text, \
         start_value int8, min_value int8, max_value int8, increment_by int8, \
         cycle bool, cache_size int8, last_value int8?",
    ),
    (
        "pg_foreign_table",
        "ftrelid oid, ftserver oid, ftoptions text?",
    ),
    (
        "pg_partitioned_table",
        "partrelid oid, partstrat char, partnatts int2, partdefid oid, partattrs text, \
         partclass text, partcollation text, partexprs text?",
    ),
    (
        "pg_views",
        "schemaname name, viewname name, viewowner name, definition text",
    ),
    (
        "pg_matviews",
        "schemaname name, matviewname name, matviewowner name, tablespace name?, \
         hasindexes bool, ispopulated bool, definition text",
    ),
    (
        "pg_event_trigger",
        "oid oid, evtname name, evtevent name, evtowner oid, evtfoid oid, \
         evtenabled char, evttags text?",
    ),
    (
        "pg_cast",
        "oid oid, castsource oid, casttarget oid, castfunc oid, castcontext char, \
         castmethod char",
    ),
    (
        "pg_operator",
        "oid oid, oprname name, oprnamespace oid, oprowner oid, oprkind char, \
         oprcanmerge bool, oprcanhash bool, oprleft oid, oprright oid, oprresult oid, \
         oprcom oid, oprnegate oid, oprcode oid, oprrest oid, oprjoin oid",
    ),
    (
        "pg_opclass",
        "oid oid, opcmethod oid, opcname name, opcnamespace oid, opcowner oid, \
         opcfamily oid, opcintype oid, opcdefault bool, opckeytype oid",
    ),
    (
        "pg_language",
        "oid oid, lanname name, lanowner oid, lanispl bool, lanpltrusted bool, \
         lanplcallfoid oid, laninline oid, lanvalidator oid, lanacl text?",
    ),
    (
        "pg_default_acl",
        "oid oid, defaclrole oid, defaclnamespace oid, defaclobjtype char, \
         defaclacl text?",
    ),
    (
        "pg_conversion",
        "oid oid, conname name, connamespace oid, conowner oid, conforencoding int4, \
         contoencoding int4, conproc oid, condefault bool",
    ),
    (
        "pg_foreign_data_wrapper",
        "oid oid, fdwname name, fdwowner oid, fdwhandler oid, fdwvalidator oid, \
         fdwacl text?, fdwoptions text?",
    ),
    (
        "pg_foreign_server",
        "oid oid, srvname name, srvowner oid, srvfdw oid, srvtype text?, \
         srvversion text?, srvacl text?, srvoptions text?",
    ),
];

/// The column spec of pg_catalog table `name`.
pub(super) fn spec(name: &str) -> Option<&'static str> {
    Some(match name {
        "pg_class" => PG_CLASS,
        "pg_attribute" => PG_ATTRIBUTE,
        "pg_index" => PG_INDEX,
        "pg_attrdef" => PG_ATTRDEF,
        "pg_constraint" => PG_CONSTRAINT,
        "pg_type" => PG_TYPE,
        "pg_namespace" => PG_NAMESPACE,
        "pg_database" => PG_DATABASE,
        "pg_roles" | "pg_authid" => PG_ROLES,
        "pg_user" => PG_USER,
        "pg_am" => PG_AM,
        "pg_tablespace" => PG_TABLESPACE,
        "pg_collation" => PG_COLLATION,
        "pg_tables" => PG_TABLES,
        "pg_indexes" => PG_INDEXES,
        "pg_settings" => PG_SETTINGS,
        other => EMPTY.iter().find(|(n, _)| *n == other)?.1,
    })
}

/// The indexes of `table` as PostgreSQL sees them: the primary key (unless
/// it is the hidden row id) and the secondary indexes, with their oids.
fn indexes(table: &TableDescriptor) -> Vec<(i64, &crate::catalog::IndexDescriptor, bool)> {
    let hidden_key = table
        .primary_index
        .columns
        .iter()
        .any(|(id, _)| table.columns.iter().any(|c| c.id == *id && c.hidden));
    let mut out = Vec::new();
    if !hidden_key {
        out.push((
            index_oid(table.id, table.primary_index.id),
            &table.primary_index,
            true,
        ));
    }
    for index in &table.indexes {
        out.push((index_oid(table.id, index.id), index, false));
    }
    out
}

/// An identifier as PostgreSQL prints it: quoted unless it is a plain
/// lower-case name.
pub fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The key column list of `index`: `(a, b DESC)`'s inside.
fn key_list(table: &TableDescriptor, index: &crate::catalog::IndexDescriptor) -> String {
    index
        .columns
        .iter()
        .map(|(id, dir)| {
            let name = table
                .columns
                .iter()
                .find(|c| c.id == *id)
                .map(|c| quote_ident(&c.name))
                .unwrap_or_default();
            match dir {
                crate::catalog::IndexDirection::Asc => name,
                crate::catalog::IndexDirection::Desc => format!("{name} DESC"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `pg_get_indexdef` prints for `index`.
fn indexdef(table: &TableDescriptor, index: &crate::catalog::IndexDescriptor) -> String {
    format!(
        "CREATE {}INDEX {} ON public.{} USING btree ({})",
        if index.unique { "UNIQUE " } else { "" },
        quote_ident(&index.name),
        quote_ident(&table.name),
        key_list(table, index)
    )
}

/// Fixed rows of pg_type: the types Meridian has.
fn types() -> Vec<Row> {
    use SqlType::*;
    [
        (Bool, "B"),
        (Bytea, "U"),
        (Name, "S"),
        (PgChar, "Z"),
        (Int8, "N"),
        (Int2, "N"),
        (Int4, "N"),
        (Text, "S"),
        (Oid, "N"),
        (Float4, "N"),
        (Float8, "N"),
        (Unknown, "X"),
        (Char(1), "S"),
        (Varchar(None), "S"),
        (Date, "D"),
        (Timestamp, "D"),
        (TimestampTz, "D"),
        (Interval, "T"),
        (Numeric, "N"),
        (Uuid, "U"),
        (Jsonb, "U"),
    ]
    .iter()
    .map(|(t, category)| {
        let len = t.wire_size();
        row(
            PG_TYPE,
            &[
                ("oid", int(t.oid())),
                ("typname", text(type_name(*t))),
                ("typnamespace", int(PG_CATALOG_NAMESPACE)),
                ("typowner", int(ROOT_ROLE)),
                ("typlen", int(len)),
                ("typbyval", Datum::Bool((1..=8).contains(&len))),
                ("typtype", text("b")),
                ("typcategory", text(*category)),
                ("typisdefined", Datum::Bool(true)),
                ("typdelim", text(",")),
                ("typalign", text(if len == 8 { "d" } else { "i" })),
                ("typstorage", text(if len < 0 { "x" } else { "p" })),
                ("typtypmod", int(-1)),
                (
                    "typcollation",
                    int(if matches!(t, Text | Varchar(_) | Char(_)) {
                        100
                    } else {
                        0
                    }),
                ),
            ],
        )
    })
    .collect()
}

/// The rows of pg_catalog table `name` (declared by `spec`).
pub(super) async fn rows(
    ctx: &ExecContext<'_>,
    name: &str,
    spec: &'static str,
) -> Result<Vec<Row>, SqlError> {
    let session_user = (ctx.user != "root").then_some(ctx.user);
    Ok(match name {
        "pg_class" => {
            let mut rows = Vec::new();
            for t in tables(ctx).await? {
                let indexes = indexes(&t);
                rows.push(row(
                    spec,
                    &[
                        ("oid", int(t.id as i64)),
                        ("relname", text(t.name.clone())),
                        ("relnamespace", int(PUBLIC_NAMESPACE)),
                        ("relowner", int(ROOT_ROLE)),
                        ("relam", int(HEAP_AM)),
                        ("reltuples", Datum::Float(-1.0)),
                        ("relhasindex", Datum::Bool(!indexes.is_empty())),
                        ("relpersistence", text("p")),
                        ("relkind", text("r")),
                        ("relnatts", int(visible_columns(&t).count() as i64)),
                        ("relispopulated", Datum::Bool(true)),
                        ("relreplident", text("d")),
                    ],
                ));
                for (oid, index, _) in indexes {
                    rows.push(row(
                        spec,
                        &[
                            ("oid", int(oid)),
                            ("relname", text(index.name.clone())),
                            ("relnamespace", int(PUBLIC_NAMESPACE)),
                            ("relowner", int(ROOT_ROLE)),
                            ("relam", int(BTREE_AM)),
                            ("reltuples", Datum::Float(-1.0)),
                            ("relpersistence", text("p")),
                            ("relkind", text("i")),
                            ("relnatts", int(index.columns.len() as i64)),
                            ("relispopulated", Datum::Bool(true)),
                            ("relreplident", text("n")),
                            ("meridian_indexdef", text(indexdef(&t, index))),
                        ],
                    ));
                }
            }
            rows
        }
        "pg_attribute" => {
            let mut rows = Vec::new();
            for t in tables(ctx).await? {
                for (attnum, c) in visible_columns(&t) {
                    rows.push(row(
                        spec,
                        &[
                            ("attrelid", int(t.id as i64)),
                            ("attname", text(c.name.clone())),
                            ("atttypid", int(c.ty.oid())),
                            ("attstattarget", int(-1)),
                            ("attlen", int(c.ty.wire_size())),
                            ("attnum", int(attnum)),
                            ("attcacheoff", int(-1)),
                            ("atttypmod", int(typmod(c.ty))),
                            ("attbyval", Datum::Bool((1..=8).contains(&c.ty.wire_size()))),
                            (
                                "attalign",
                                text(if c.ty.wire_size() == 8 { "d" } else { "i" }),
                            ),
                            (
                                "attstorage",
                                text(if c.ty.wire_size() < 0 { "x" } else { "p" }),
                            ),
                            ("attnotnull", Datum::Bool(!c.nullable)),
                            ("atthasdef", Datum::Bool(c.default.is_some())),
                            ("attislocal", Datum::Bool(true)),
                            ("attcollation", int(if c.ty.is_string() { 100 } else { 0 })),
                            (
                                "meridian_default",
                                c.default.clone().map(Datum::Text).unwrap_or(Datum::Null),
                            ),
                        ],
                    ));
                }
                // Index columns, as PostgreSQL lists them under the index.
                for (oid, index, _) in indexes(&t) {
                    for (i, (id, _)) in index.columns.iter().enumerate() {
                        let Some(c) = t.columns.iter().find(|c| c.id == *id) else {
                            continue;
                        };
                        rows.push(row(
                            spec,
                            &[
                                ("attrelid", int(oid)),
                                ("attname", text(c.name.clone())),
                                ("atttypid", int(c.ty.oid())),
                                ("attlen", int(c.ty.wire_size())),
                                ("attnum", int(i as i64 + 1)),
                                ("attcacheoff", int(-1)),
                                ("atttypmod", int(typmod(c.ty))),
                                ("attislocal", Datum::Bool(true)),
                                ("attcollation", int(if c.ty.is_string() { 100 } else { 0 })),
                            ],
                        ));
                    }
                }
            }
            rows
        }
        "pg_index" => {
            let mut rows = Vec::new();
            for t in tables(ctx).await? {
                for (oid, index, primary) in indexes(&t) {
                    let keys: Vec<String> = index
                        .columns
                        .iter()
                        .map(|(id, _)| attnum(&t, *id).to_string())
                        .collect();
                    let options: Vec<&str> = index
                        .columns
                        .iter()
                        .map(|(_, d)| match d {
                            crate::catalog::IndexDirection::Asc => "0",
                            crate::catalog::IndexDirection::Desc => "3",
                        })
                        .collect();
                    let zeros = vec!["0"; index.columns.len()].join(" ");
                    rows.push(row(
                        spec,
                        &[
                            ("indexrelid", int(oid)),
                            ("indrelid", int(t.id as i64)),
                            ("indnatts", int(index.columns.len() as i64)),
                            ("indnkeyatts", int(index.columns.len() as i64)),
                            ("indisunique", Datum::Bool(index.unique || primary)),
                            ("indisprimary", Datum::Bool(primary)),
                            ("indimmediate", Datum::Bool(true)),
                            ("indisvalid", Datum::Bool(true)),
                            ("indisready", Datum::Bool(true)),
                            ("indislive", Datum::Bool(true)),
                            ("indkey", text(keys.join(" "))),
                            ("indcollation", text(zeros.clone())),
                            ("indclass", text(zeros)),
                            ("indoption", text(options.join(" "))),
                            ("meridian_indexdef", text(indexdef(&t, index))),
                        ],
                    ));
                }
            }
            rows
        }
        "pg_attrdef" => {
            let mut rows = Vec::new();
            for t in tables(ctx).await? {
                for (attnum, c) in visible_columns(&t) {
                    if let Some(default) = &c.default {
                        rows.push(row(
                            spec,
                            &[
                                ("oid", int((1_i64 << 31) + t.id as i64 * 1024 + attnum)),
                                ("adrelid", int(t.id as i64)),
                                ("adnum", int(attnum)),
                                ("adbin", text(default.clone())),
                            ],
                        ));
                    }
                }
            }
            rows
        }
        "pg_constraint" => {
            let mut rows = Vec::new();
            for t in tables(ctx).await? {
                for (oid, index, primary) in indexes(&t) {
                    if !primary {
                        continue;
                    }
                    let keys: Vec<String> = index
                        .columns
                        .iter()
                        .map(|(id, _)| attnum(&t, *id).to_string())
                        .collect();
                    rows.push(row(
                        spec,
                        &[
                            ("oid", int(oid)),
                            ("conname", text(index.name.clone())),
                            ("connamespace", int(PUBLIC_NAMESPACE)),
                            ("contype", text("p")),
                            ("convalidated", Datum::Bool(true)),
                            ("conrelid", int(t.id as i64)),
                            ("conindid", int(oid)),
                            ("conislocal", Datum::Bool(true)),
                            ("connoinherit", Datum::Bool(true)),
                            ("conkey", text(format!("{{{}}}", keys.join(",")))),
                            (
                                "meridian_condef",
                                text(format!("PRIMARY KEY ({})", key_list(&t, index))),
                            ),
                        ],
                    ));
                }
            }
            rows
        }
        "pg_type" => types(),
        "pg_namespace" => [
            (PG_CATALOG_NAMESPACE, "pg_catalog"),
            (PUBLIC_NAMESPACE, "public"),
            (INFORMATION_SCHEMA_NAMESPACE, "information_schema"),
        ]
        .iter()
        .map(|(oid, name)| {
            row(
                spec,
                &[
                    ("oid", int(*oid)),
                    ("nspname", text(*name)),
                    ("nspowner", int(ROOT_ROLE)),
                ],
            )
        })
        .collect(),
        "pg_database" => ctx
            .catalog()
            .databases()
            .await?
            .into_iter()
            .map(|d| {
                row(
                    spec,
                    &[
                        ("oid", int(d.id as i64)),
                        ("datname", text(d.name)),
                        ("datdba", int(ROOT_ROLE)),
                        ("encoding", int(6)),
                        ("datlocprovider", text("c")),
                        ("datallowconn", Datum::Bool(true)),
                        ("datconnlimit", int(-1)),
                        ("dattablespace", int(1663)),
                        ("datcollate", text("C.UTF-8")),
                        ("datctype", text("C.UTF-8")),
                    ],
                )
            })
            .collect(),
        "pg_roles" | "pg_authid" => std::iter::once((ROOT_ROLE, "root"))
            .chain(session_user.map(|u| (SESSION_ROLE, u)))
            .map(|(oid, name)| {
                let root = oid == ROOT_ROLE;
                row(
                    spec,
                    &[
                        ("oid", int(oid)),
                        ("rolname", text(name)),
                        ("rolsuper", Datum::Bool(root)),
                        ("rolinherit", Datum::Bool(true)),
                        ("rolcreaterole", Datum::Bool(root)),
                        ("rolcreatedb", Datum::Bool(root)),
                        ("rolcanlogin", Datum::Bool(true)),
                        ("rolconnlimit", int(-1)),
                        ("rolpassword", text("********")),
                    ],
                )
            })
            .collect(),
        "pg_user" => std::iter::once((ROOT_ROLE, "root"))
            .chain(session_user.map(|u| (SESSION_ROLE, u)))
            .map(|(oid, name)| {
                let root = oid == ROOT_ROLE;
                row(
                    spec,
                    &[
                        ("usename", text(name)),
                        ("usesysid", int(oid)),
                        ("usecreatedb", Datum::Bool(root)),
                        ("usesuper", Datum::Bool(root)),
                        ("passwd", text("********")),
                    ],
                )
            })
            .collect(),
        "pg_am" => [(HEAP_AM, "heap", "t"), (BTREE_AM, "btree", "i")]
            .iter()
            .map(|(oid, name, kind)| {
                row(
                    spec,
                    &[
                        ("oid", int(*oid)),
                        ("amname", text(*name)),
                        ("amtype", text(*kind)),
                    ],
                )
            })
            .collect(),
        "pg_tablespace" => [(1663, "pg_default"), (1664, "pg_global")]
            .iter()
            .map(|(oid, name)| {
                row(
                    spec,
                    &[
                        ("oid", int(*oid)),
                        ("spcname", text(*name)),
                        ("spcowner", int(ROOT_ROLE)),
                    ],
                )
            })
            .collect(),
        "pg_collation" => [(100, "default", "d"), (950, "C", "c"), (951, "POSIX", "c")]
            .iter()
            .map(|(oid, name, provider)| {
                let locale = (*provider == "c").then(|| text(*name));
                row(
                    spec,
                    &[
                        ("oid", int(*oid)),
                        ("collname", text(*name)),
                        ("collnamespace", int(PG_CATALOG_NAMESPACE)),
                        ("collowner", int(ROOT_ROLE)),
                        ("collprovider", text(*provider)),
                        ("collisdeterministic", Datum::Bool(true)),
                        ("collencoding", int(-1)),
                        ("collcollate", locale.clone().unwrap_or(Datum::Null)),
                        ("collctype", locale.unwrap_or(Datum::Null)),
                    ],
                )
            })
            .collect(),
        "pg_tables" => tables(ctx)
            .await?
            .into_iter()
            .map(|t| {
                row(
                    spec,
                    &[
                        ("schemaname", text("public")),
                        ("tablename", text(t.name.clone())),
                        ("tableowner", text("root")),
                        ("hasindexes", Datum::Bool(!indexes(&t).is_empty())),
                    ],
                )
            })
            .collect(),
        "pg_indexes" => {
            let mut rows = Vec::new();
            for t in tables(ctx).await? {
                for (_, index, _) in indexes(&t) {
                    rows.push(row(
                        spec,
                        &[
                            ("schemaname", text("public")),
                            ("tablename", text(t.name.clone())),
                            ("indexname", text(index.name.clone())),
                            ("indexdef", text(indexdef(&t, index))),
                        ],
                    ));
                }
            }
            rows
        }
        "pg_settings" => ctx
            .vars
            .iter()
            .map(|(k, v)| {
                row(
                    spec,
                    &[
                        ("name", text(k.clone())),
                        ("setting", text(v.clone())),
                        ("context", text("user")),
                        ("vartype", text("string")),
                        ("source", text("session")),
                    ],
                )
            })
            .collect(),
        _ => Vec::new(),
    })
}
