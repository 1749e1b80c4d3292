//! Name resolution timings for `benches/network.sh` (an example: `cargo test` builds it, never runs it): how long
//! ipkg takes to find a package by name from the cached, verified registry
//! indexes (no network), and to refresh every subscribed registry.
//!
//!   name_resolution PACKAGE [RUNS]
//!
//! Uses the prefix and config of the environment (`IPKG_PREFIX`,
//! `XDG_CONFIG_HOME`), as `ipkg` does. Prints `cache_ms=… refresh_ms=…
//! registries=…` (medians).

use std::time::Instant;

use ipkg::ops::config::{Layout, Overrides};
use ipkg::ops::resolve::{Resolver, Spec, parse_spec};
use ipkg::sources::BlockSource;
use ipkg::sources::store::BlockStore;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let package = args.next().expect("usage: name_resolution PACKAGE [RUNS]");
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(20);
    let layout = Layout::resolve(&Overrides::default()).expect("a layout");
    let store = BlockStore::open(layout.blocks_dir()).expect("the store");
    let spec = parse_spec(&package).expect("a package name");
    let Spec::Name { registry, name, .. } = &spec else {
        panic!("`{package}` is not a name");
    };

    // From cache: load every known index from the store (verifying the
    // root signature and each package document) and find the package.
    let none: Vec<&dyn BlockSource> = Vec::new();
    let mut cache = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let resolver = Resolver::new(&layout, &store, &none).expect("known registries");
        let (_reg, doc) = resolver
            .find_package(registry.as_ref(), name)
            .expect("the package");
        assert!(!doc.releases.is_empty());
        cache.push(t.elapsed().as_secs_f64() * 1000.0);
    }

    // A refresh of every subscription: the IPNS record from each source,
    // then only blocks that changed (none here).
    let net = ipkg::ops::resolve::fetch::configured_sources(&layout).expect("sources");
    let sources: Vec<&dyn BlockSource> = net.iter().map(|s| s.as_ref()).collect();
    let mut refresh = Vec::new();
    let mut registries = 0;
    for _ in 0..runs.min(10) {
        let t = Instant::now();
        let r = ipkg::ops::resolve::subscriptions::refresh_all(&layout, &store, &sources, &|_| {})
            .expect("refresh");
        refresh.push(t.elapsed().as_secs_f64() * 1000.0);
        registries = r.len();
        for (alias, res) in r {
            res.unwrap_or_else(|e| panic!("refreshing `{alias}`: {e}"));
        }
    }
    println!(
        "cache_ms={:.3} refresh_ms={:.3} registries={registries}",
        median(cache),
        median(refresh)
    );
}
