#!/usr/bin/env bash
# The footprint budgets (issue 14): builds the four minimal programs of `footprint/` (blocking on
# azmi-ureq and async on azmi-hyper, each with the transport's default TLS and with
# `default-features = false`), prints their crate counts and stripped release sizes, and fails if
# one is over its budget.
#
# Crates are counted as `cargo tree -e normal --prefix none` lists them, deduplicated by name and
# version, without the program's own package: every crate (including azmi's own and the
# standard library's none) whose code can end up in the binary. Build scripts, proc macros and
# dev-dependencies are not counted (`-e normal`). Bytes: the release binary as `footprint/`'s
# profile builds it (`strip = true`, `lto = true`, `codegen-units = 1`), on the build machine.
set -euo pipefail
cd "$(dirname "$0")/../footprint"
export CARGO_TERM_COLOR=never
# One target dir for the four builds, apart from the workspace's (different features, release).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-../target}/footprint"

# program, features, crate budget, stripped-bytes budget. The blocking budgets are issue 14's;
# the async ones are what was measured (58 and 44 crates, 2 774 224 and 1 372 208 bytes) plus a
# little room: tokio and hyper (with hyper-util, http-body, futures pieces) weigh more than ureq.
programs=(
  "blocking blocking,default-tls 45 2700000"
  "blocking blocking 30 1258291"
  "async async,default-tls 62 2900000"
  "async async 48 1450000"
)

# The programs build with the workspace's dependency versions: their lock file is the
# workspace's (cargo drops what they do not use), so it never drifts from the libraries' own.
cp ../Cargo.lock Cargo.lock

printf '%-9s %-5s %7s %13s   %s\n' program tls crates bytes budget
over=0
for p in "${programs[@]}"; do
  read -r bin features crate_budget byte_budget <<<"$p"
  tls=no; [[ $features == *default-tls* ]] && tls=yes
  crates=$(cargo tree -q -e normal --prefix none --no-default-features --features "$features" \
    | sed 's/ (\*)$//' | sort -u | grep -vc '^azmi-footprint ')
  cargo build -q --release --no-default-features --features "$features" --bin "$bin"
  bytes=$(wc -c <"$CARGO_TARGET_DIR/release/$bin")
  verdict=ok
  if (( crates > crate_budget || bytes > byte_budget )); then verdict=OVER; over=1; fi
  printf '%-9s %-5s %7d %13d   <= %d crates, <= %d bytes: %s\n' \
    "$bin" "$tls" "$crates" "$bytes" "$crate_budget" "$byte_budget" "$verdict"
done
exit "$over"
