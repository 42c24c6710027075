//! Prints a fuzz input readably: `cargo run --example explain -- <target> <file>` (from `fuzz/`).
//! For the structure-aware targets it shows the decoded description and what it renders to.

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, target, file] = args.as_slice() else {
        eprintln!("usage: cargo run --example explain -- <target> <file>");
        std::process::exit(2);
    };
    let data = std::fs::read(file)?;
    println!("{}", azmi_fuzz::entries::explain(target, &data));
    Ok(())
}
