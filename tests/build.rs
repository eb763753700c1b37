//! The README's two commands share one build: `cargo run --release` must compile every
//! dependency with the same features as `cargo test --release --workspace`, or a newcomer pays
//! for polars twice (a cold build of it takes most of the 17–25 minutes on 2 cores). A dev-dependency that turns on a feature
//! in a shared crate breaks this silently; this test names the crate and the features.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// `cargo tree`'s packages (`name version`), each with the feature sets it is built with (a
/// build dependency can be built a second time, for the host, with other features).
fn features(args: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .args(["tree", "--locked", "--prefix", "none", "-f", "{p}|{f}"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let Some((package, feats)) = line.split_once('|') else {
            continue;
        };
        // `(*)` marks a package shown before; `(/path)` a workspace member.
        let package = package.split(" (").next().unwrap().trim().to_string();
        let feats = feats.trim_end_matches(" (*)").trim().to_string();
        map.entry(package).or_default().insert(feats);
    }
    map
}

#[test]
fn cargo_run_builds_the_dependencies_cargo_test_builds() {
    let run = features(&["-p", "creditguard", "-e", "normal,build"]);
    let test = features(&["--workspace", "-e", "normal,build,dev"]);
    assert!(
        run.len() > 100,
        "cargo tree listed only {} packages",
        run.len()
    );
    let differ: Vec<String> = run
        .iter()
        .filter(|(package, _)| !package.starts_with("creditguard"))
        .filter_map(|(package, feats)| match test.get(package) {
            Some(t) if feats.is_subset(t) => None,
            t => Some(format!(
                "{package}: `cargo run` builds it with {feats:?}, the tests with {:?}",
                t.cloned().unwrap_or_default()
            )),
        })
        .collect();
    assert!(
        differ.is_empty(),
        "the README's run command would build these dependencies a second time; name the \
         tests' features in the root Cargo.toml's feature-unification block:\n{}",
        differ.join("\n")
    );
}
