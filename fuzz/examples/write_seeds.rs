//! Writes the seed corpus and the regression inputs: `cargo run --example write_seeds` (from
//! `fuzz/`).
//!
//! Every seed of `azmi_fuzz::entries::seeds()` goes to `corpus/<target>/<name>`: PROTOCOL.md's
//! examples as raw bytes for the raw targets, and encoded descriptions for the structure-aware
//! ones. Every input of `regressions()` goes to `regressions/<target>/<name>`. Files the fuzzer
//! added are left alone. Each input is then run through its target once.

use std::fs;
use std::path::Path;

fn main() -> std::io::Result<()> {
    azmi_fuzz::entries::check_seed_encoding();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = azmi_fuzz::entries::seeds();
    let regressions = azmi_fuzz::entries::regressions();
    for (dir, inputs) in [("corpus", &seeds), ("regressions", &regressions)] {
        for input in inputs {
            let dir = root.join(dir).join(input.target);
            fs::create_dir_all(&dir)?;
            fs::write(dir.join(&input.name), &input.bytes)?;
        }
    }
    for (target, entry) in azmi_fuzz::entries::TARGETS {
        fs::create_dir_all(root.join("corpus").join(target))?;
        for input in seeds
            .iter()
            .chain(&regressions)
            .filter(|s| s.target == *target)
        {
            entry(&input.bytes);
        }
    }
    println!(
        "wrote {} seeds and {} regression inputs under {}",
        seeds.len(),
        regressions.len(),
        root.display()
    );
    Ok(())
}
