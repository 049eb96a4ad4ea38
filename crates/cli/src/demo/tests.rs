//! The demo's layout: regions, zones and latency from a profile.

use super::*;

fn args(nodes: usize) -> DemoArgs {
    DemoArgs {
        nodes,
        latency: None,
        no_latency: false,
        no_shell: false,
        sql_listen: None,
        empty: false,
        max_offset_ms: None,
        script: ScriptArgs::default(),
    }
}

#[test]
fn nodes_go_round_robin_over_the_regions_and_zones() {
    let layout = Layout::new(&args(9)).unwrap();
    let names: Vec<String> = layout.localities.iter().map(|l| l.to_string()).collect();
    assert_eq!(
        names,
        [
            "region=us-east1,zone=us-east1-a",
            "region=us-west1,zone=us-west1-a",
            "region=europe-west1,zone=europe-west1-a",
            "region=us-east1,zone=us-east1-b",
            "region=us-west1,zone=us-west1-b",
            "region=europe-west1,zone=europe-west1-b",
            "region=us-east1,zone=us-east1-c",
            "region=us-west1,zone=us-west1-c",
            "region=europe-west1,zone=europe-west1-c",
        ]
    );
    assert!(layout.network.is_some());
    let layout = Layout::new(&args(13)).unwrap();
    assert_eq!(layout.localities[12].zone, "us-east1-b");
}

#[test]
fn other_profiles_and_no_latency() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.toml");
    std::fs::write(
        &path,
        "name = \"two\"\n[[links]]\nregions = [\"eu\", \"ap\"]\nrtt_ms = 200.0\n",
    )
    .unwrap();
    let mut a = args(3);
    a.latency = Some(path);
    a.no_latency = true;
    let layout = Layout::new(&a).unwrap();
    assert!(layout.network.is_none());
    let regions: Vec<&str> = layout
        .localities
        .iter()
        .map(|l| l.region.as_str())
        .collect();
    assert_eq!(regions, ["eu", "ap", "eu"]);

    let e = Layout::new(&args(0)).unwrap_err().to_string();
    assert!(e.contains("--nodes must be at least 1"), "{e}");
    let mut a = args(3);
    a.latency = Some(dir.path().join("missing.toml"));
    let e = format!("{:#}", Layout::new(&a).unwrap_err());
    assert!(e.contains("missing.toml"), "{e}");
}
