//! Reload cost: reading nothing, parsing, compiling and swapping a routes
//! table, for 10,000 synthetic routes and the real 3,265-operation table.
//!
//! cargo bench --bench reload

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use criterion::{Criterion, criterion_group, criterion_main};

mod common;

fn reload(c: &mut Criterion) {
    let upstreams = ["default".to_string()];
    let genesys =
        std::fs::read_to_string(common::genesys_file()).expect("tests/data/genesys-routes.toml");
    let synthetic = common::synthetic_routes(10_000);
    let file = Path::new("routes.toml");
    let initial = permgate::routes::parse(&genesys, file, &upstreams).expect("real table");
    let current = ArcSwap::from_pointee(initial);

    let mut g = c.benchmark_group("reload");
    g.sample_size(20);
    for (name, text) in [("synthetic_10000", &synthetic), ("genesys_3265", &genesys)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let table = permgate::routes::parse(text, file, &upstreams).expect("valid table");
                current.store(Arc::new(table));
            })
        });
    }
    g.finish();
}

criterion_group!(benches, reload);
criterion_main!(benches);
