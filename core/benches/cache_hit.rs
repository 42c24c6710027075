//! `cargo bench -p azmi-core --bench cache_hit`: the core's part of a cache hit — the per-thread
//! replica lookup, the generation check, the freshness verdict and the token copy — with the
//! time passed in, so no clock is read.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use azmi_core::AccessToken;
use azmi_core::cache::{Begin, Table};
use azmi_core::time::{Duration, OffsetDateTime};
use criterion::{Criterion, criterion_group, criterion_main};

const SCOPE: &str = "https://vault.azure.net/.default";

fn hit(c: &mut Criterion) {
    let t0 = OffsetDateTime::from_unix_timestamp(1_795_688_300).expect("a valid time");
    let table: Table<()> = Table::new();
    let slot = table.slot(SCOPE);
    let Begin::Lead(flight, ()) = slot.begin(t0, || ()) else {
        panic!("an empty slot is led")
    };
    let token = AccessToken::new(
        "x".repeat(1500),
        "Bearer",
        t0 + Duration::hours(24),
        t0 + Duration::hours(12),
    );
    slot.finish(&flight, Ok(token), t0).expect("stored");
    let now = (t0 + Duration::minutes(1)).unix_timestamp_nanos();
    c.bench_function("core/cache/table_hit", |b| {
        b.iter(|| black_box(table.hit(black_box(SCOPE), black_box(now))))
    });
    let others: Vec<Table<()>> = (0..3).map(|_| Table::new()).collect();
    for other in &others {
        let slot = other.slot(SCOPE);
        let Begin::Lead(flight, ()) = slot.begin(t0, || ()) else {
            panic!("an empty slot is led")
        };
        let token = AccessToken::new(
            "y".repeat(900),
            "Bearer",
            t0 + Duration::hours(24),
            t0 + Duration::hours(12),
        );
        slot.finish(&flight, Ok(token), t0).expect("stored");
        black_box(other.hit(SCOPE, now));
    }
    c.bench_function("core/cache/table_hit_4th_table", |b| {
        b.iter(|| black_box(others[2].hit(black_box(SCOPE), black_box(now))))
    });
}

criterion_group!(benches, hit);
criterion_main!(benches);
