//! Unit and property tests of the config, its text form, the span map and
//! the multi-region synthesis (the allocator's are in
//! `allocator/tests.rs`, the scenarios in `testdata/`).

use meridian_topology::Locality;
use proptest::prelude::*;

use crate::constraint::{Conjunction, Constraint, ConstraintKind, Tier};
use crate::multiregion::{DataPlacement, MultiRegionSettings, SurvivalGoal, TableLocality};
use crate::*;

fn cfg(text: &str) -> ZoneConfig {
    parse_using(text).unwrap()
}

#[test]
fn inheritance_fills_only_unset_fields() {
    let parent = cfg("num_replicas = 5, gc.ttlseconds = 600, constraints = '[+region=eu]'");
    let child = cfg("num_replicas = 3, global_reads = true");
    let merged = child.inherit(&parent);
    assert_eq!(merged.num_replicas, Some(3));
    assert_eq!(merged.gc_ttl_seconds, Some(600));
    assert_eq!(merged.global_reads, Some(true));
    assert_eq!(merged.constraints, parent.constraints);
    assert_eq!(merged.range_max_bytes, None);
    let eff = merged.effective();
    assert_eq!(eff.range_max_bytes, 512 << 20);
    assert_eq!(eff.range_min_bytes, 128 << 20);
    assert_eq!(eff.num_voters, 3, "num_voters unset everywhere: all voters");
}

#[test]
fn default_config_sets_every_field_but_num_voters() {
    let d = ZoneConfig::default_config();
    assert_eq!(d.num_replicas, Some(3));
    assert_eq!(d.gc_ttl_seconds, Some(4 * 3600));
    assert!(d.num_voters.is_none());
    assert!(d.constraints.is_some() && d.lease_preferences.is_some());
}

#[test]
fn span_map_inherits_from_enclosing_spans() {
    let mut zones = ZoneConfigs::new();
    zones
        .set(b"a", b"m", cfg("num_replicas = 5, gc.ttlseconds = 60"))
        .unwrap();
    zones.set(b"c", b"f", cfg("num_voters = 3")).unwrap();
    zones.set(b"d", b"e", cfg("gc.ttlseconds = 7")).unwrap();
    let at = |k: &[u8]| zones.effective(k);
    assert_eq!(at(b"0").num_replicas, 3);
    assert_eq!(at(b"b").num_replicas, 5);
    assert_eq!((at(b"c").num_replicas, at(b"c").num_voters), (5, 3));
    assert_eq!((at(b"d").num_voters, at(b"d").gc_ttl_seconds), (3, 7));
    assert_eq!(at(b"e").gc_ttl_seconds, 60);
    assert_eq!(at(b"m").num_replicas, 3, "end is exclusive");
    assert_eq!(
        zones.split_keys_within(b"b", b"z"),
        vec![
            b"c".to_vec(),
            b"d".to_vec(),
            b"e".to_vec(),
            b"f".to_vec(),
            b"m".to_vec()
        ]
    );
    assert!(zones.split_keys_within(b"d", b"e").is_empty());
    assert!(zones.split_keys_within(b"n", b"z").is_empty());

    // Removing the middle span: the inner one inherits from the outer.
    zones.remove(b"c", b"f").unwrap();
    assert_eq!(zones.effective(b"d").num_voters, 5);
    assert!(matches!(
        zones.remove(b"c", b"f"),
        Err(PlacementError::NoSuchSpan { .. })
    ));
}

#[test]
fn span_map_refuses_partial_overlap_and_empty_spans() {
    let mut zones = ZoneConfigs::new();
    zones.set(b"b", b"f", ZoneConfig::default()).unwrap();
    let err = zones.set(b"d", b"k", ZoneConfig::default()).unwrap_err();
    assert!(
        matches!(err, PlacementError::OverlappingSpan { .. }),
        "{err}"
    );
    assert!(matches!(
        zones.set(b"k", b"k", ZoneConfig::default()),
        Err(PlacementError::EmptySpan { .. })
    ));
    // Enclosing an existing span, and replacing one, are fine.
    zones.set(b"a", b"z", cfg("num_replicas = 1")).unwrap();
    zones.set(b"b", b"f", cfg("num_replicas = 5")).unwrap();
    assert_eq!(zones.spans().len(), 2);
    assert_eq!(zones.get(b"b", b"f").unwrap().num_replicas, Some(5));
}

#[test]
fn set_validated_changes_nothing_on_error() {
    let cluster: Vec<Locality> = ["eu", "eu", "us"]
        .iter()
        .map(|r| Locality::new(*r, "z"))
        .collect();
    let mut zones = ZoneConfigs::new();
    zones
        .set_validated(b"a", b"z", cfg("num_replicas = 3"), &cluster)
        .unwrap();
    zones
        .set_validated(b"c", b"d", cfg("gc.ttlseconds = 10"), &cluster)
        .unwrap();
    let before = zones.clone();
    // The outer change would leave the inner span (which inherits it)
    // unsatisfiable.
    let err = zones
        .set_validated(
            b"a",
            b"z",
            cfg("num_replicas = 3, constraints = '[+region=eu]'"),
            &cluster,
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("only 2 nodes in region eu"),
        "{err}"
    );
    assert_eq!(zones, before);
}

#[test]
fn span_map_round_trips_through_postcard() {
    let mut zones = ZoneConfigs::new();
    zones
        .set(
            b"a",
            b"z",
            cfg("num_replicas = 5, num_voters = 3, constraints = '{+region=eu: 2}', voter_constraints = '[+region=eu]', lease_preferences = '[[+region=eu], [+zone=us-1]]', global_reads = true"),
        )
        .unwrap();
    let bytes = postcard::to_allocvec(&zones).unwrap();
    let back: ZoneConfigs = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, zones);
}

#[test]
fn multiregion_refuses_what_cockroachdb_refuses() {
    let settings = |regions: &[&str], survival, placement| MultiRegionSettings {
        regions: regions.iter().map(|r| r.to_string()).collect(),
        primary_region: "a".into(),
        survival,
        placement,
    };
    let two = settings(&["a", "b"], SurvivalGoal::Region, DataPlacement::Default);
    assert!(synthesize(&two, &TableLocality::Global).is_err());
    let restricted = settings(
        &["a", "b", "c"],
        SurvivalGoal::Region,
        DataPlacement::Restricted,
    );
    assert!(synthesize(&restricted, &TableLocality::RegionalByTable(None)).is_err());
    let ok = settings(
        &["a", "b", "c"],
        SurvivalGoal::Zone,
        DataPlacement::Restricted,
    );
    assert!(synthesize(&ok, &TableLocality::RegionalByRow("d".into())).is_err());
    assert!(synthesize(&ok, &TableLocality::RegionalByRow("c".into())).is_ok());
}

fn region_names() -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(vec!["r0", "r1", "r2", "r3", "r4", "r5", "r6"], 1..=7)
        .prop_map(|v| v.into_iter().map(String::from).collect())
}

proptest! {
    /// Every synthesized config is satisfiable on a cluster with 3 nodes
    /// (in 3 zones) per database region, and its shape follows the rules.
    #[test]
    fn synthesized_configs_validate(
        regions in region_names(),
        primary in 0usize..7,
        home in 0usize..7,
        region_survival in any::<bool>(),
        restricted in any::<bool>(),
        kind in 0u8..4,
    ) {
        let primary = regions[primary % regions.len()].clone();
        let home = regions[home % regions.len()].clone();
        let survival = if region_survival { SurvivalGoal::Region } else { SurvivalGoal::Zone };
        let placement = if restricted { DataPlacement::Restricted } else { DataPlacement::Default };
        let settings = MultiRegionSettings { regions: regions.clone(), primary_region: primary.clone(), survival, placement };
        let locality = match kind {
            0 => TableLocality::Global,
            1 => TableLocality::RegionalByTable(None),
            2 => TableLocality::RegionalByTable(Some(home.clone())),
            _ => TableLocality::RegionalByRow(home.clone()),
        };
        let result = synthesize(&settings, &locality);
        if region_survival && (regions.len() < 3 || restricted) {
            prop_assert!(result.is_err());
            return Ok(());
        }
        let config = result.unwrap().effective();
        let cluster: Vec<Locality> = regions
            .iter()
            .flat_map(|r| (0..3).map(move |z| Locality::new(r.clone(), format!("{r}-{z}"))))
            .collect();
        prop_assert_eq!(validate_for_cluster(&config, &cluster), Ok(()));
        let n = regions.len() as u32;
        let regional_restricted = restricted && kind != 0;
        let expected_replicas = match (region_survival, regional_restricted) {
            (true, _) => (n + 1).max(5),
            (false, true) => 3,
            (false, false) => 3 + n - 1,
        };
        prop_assert_eq!(config.num_replicas, expected_replicas);
        prop_assert_eq!(config.num_voters, if region_survival { 5 } else { 3 });
        prop_assert_eq!(config.global_reads, kind == 0);
        let lease_home = if kind <= 1 { &primary } else { &home };
        prop_assert_eq!(&config.lease_preferences.0, &vec![vec![Constraint::required_region(lease_home.clone())]]);
    }

    /// Printing a parsed config and parsing it again gives it back.
    #[test]
    fn text_form_round_trips(config in zone_config()) {
        prop_assume!(config != ZoneConfig::default(), "an empty USING list is refused");
        let text = config.to_string().replace('\n', " ");
        prop_assert_eq!(parse_using(&text), Ok(config));
    }
}

fn constraint() -> impl Strategy<Value = Constraint> {
    (any::<bool>(), any::<bool>(), "[a-z][a-z0-9-]{0,6}").prop_map(|(req, region, value)| {
        Constraint {
            kind: if req {
                ConstraintKind::Required
            } else {
                ConstraintKind::Prohibited
            },
            tier: if region { Tier::Region } else { Tier::Zone },
            value,
        }
    })
}

fn constraints() -> impl Strategy<Value = Constraints> {
    prop_oneof![
        proptest::collection::vec(constraint(), 0..3).prop_map(Constraints::all),
        proptest::collection::vec(
            (1u32..4, proptest::collection::vec(constraint(), 1..3)),
            1..3
        )
        .prop_map(|v| Constraints(
            v.into_iter()
                .map(|(n, c)| Conjunction {
                    num_replicas: n,
                    constraints: c
                })
                .collect()
        )),
    ]
}

fn zone_config() -> impl Strategy<Value = ZoneConfig> {
    (
        (proptest::option::of(0u32..9), proptest::option::of(0u32..9)),
        (
            proptest::option::of(constraints()),
            proptest::option::of(constraints()),
        ),
        proptest::option::of(proptest::collection::vec(
            proptest::collection::vec(constraint(), 1..3),
            0..3,
        )),
        (
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
        ),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(
            |((r, v), (c, vc), lp, (min, max, ttl), global)| ZoneConfig {
                num_replicas: r,
                num_voters: v,
                constraints: c,
                voter_constraints: vc,
                lease_preferences: lp.map(LeasePreferences),
                range_min_bytes: min,
                range_max_bytes: max,
                gc_ttl_seconds: ttl,
                global_reads: global,
            },
        )
}
