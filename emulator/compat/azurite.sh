#!/usr/bin/env bash
# object_store, given an azmi credential, must work against Azurite, the Azure Storage emulator.
#
# Installs Azurite 3.35.0 (pinned in azurite/package-lock.json) with `npm ci` into a throw-away
# directory, makes a test CA and a certificate for 127.0.0.1 with openssl (Azurite accepts
# bearer tokens only over https: `--oauth basic --cert --key`), builds the Rust test
# `azmi-hyper --features object_store --test azurite`, then, inside a fresh network namespace
# that has only loopback, starts Azurite's blob service on 127.0.0.1 and runs the test's ignored
# cases against it with AZMI_AZURITE_URL and AZMI_AZURITE_CA. The test starts azmi-emulator
# in-process: azmi fetches the storage token from it, and object_store creates, lists and reads a
# blob with it; Azurite checks the token's aud, iss, nbf and exp. Azurite's telemetry is off
# (`--disableTelemetry`), and the namespace could not reach anything anyway. Prints
# `azurite: N passed, M failed` and exits non-zero on any failure.
#
# Usage, from the repository root:   bash emulator/compat/azurite.sh
# Honours CARGO_TARGET_DIR (default: target/). Needs root (or user namespaces) for unshare.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
AZURITE_VERSION="3.35.0"
PORT=10000

# --------------------------------------------------------------------------------------------
# Inside the namespace: loopback only, Azurite in the background, then the test binary.
# Arguments: scratch directory, test binary.
inside() {
    local work="$1" test_bin="$2"
    ip link set lo up
    if [[ "$(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort -u | tr '\n' ' ')" != "lo " ]]; then
        echo "FAIL: isolation: interfaces other than loopback exist"
        return 1
    fi
    azurite_pid=""
    trap 'if [[ -n "${azurite_pid:-}" ]]; then kill "$azurite_pid" 2>/dev/null || true; fi' EXIT
    trap 'exit 143' TERM INT

    mkdir -p "$work/data"
    env -i PATH=/usr/bin:/bin HOME="$work" \
        node "$work/azurite/node_modules/azurite/dist/src/blob/main.js" \
        --blobHost 127.0.0.1 --blobPort "$PORT" --location "$work/data" \
        --oauth basic --cert "$work/tls/cert.pem" --key "$work/tls/key.pem" \
        --skipApiVersionCheck --disableTelemetry --debug "$work/azurite-debug.log" \
        >"$work/azurite.out" 2>&1 &
    azurite_pid=$!
    local i
    for i in $(seq 1 300); do
        grep -q 'successfully listens' "$work/azurite.out" 2>/dev/null && break
        if ! kill -0 "$azurite_pid" 2>/dev/null || [[ $i -eq 300 ]]; then
            echo "FAIL: Azurite did not start: $(cat "$work/azurite.out")"
            return 1
        fi
        sleep 0.1
    done

    # A clean environment: no proxy or Azure variable from the caller reaches the test.
    local rc=0
    env -i PATH=/usr/bin:/bin HOME="$work" RUST_BACKTRACE=1 \
        AZMI_AZURITE_URL="https://127.0.0.1:$PORT" AZMI_AZURITE_CA="$work/tls/ca.pem" \
        timeout 300 "$test_bin" --ignored || rc=$?
    if [[ $rc -ne 0 ]]; then
        echo "azurite: Azurite's debug log, last lines:"
        tail -n 40 "$work/azurite-debug.log" 2>/dev/null || true
    fi
    return "$rc"
}

if [[ "${1:-}" == "--inside" ]]; then
    rc=0
    inside "$2" "$3" || rc=$?
    exit "$rc"
fi

# --------------------------------------------------------------------------------------------
# Outside: isolation and tools first, then Azurite, the certificates and the test binary.
started=$SECONDS
fail() {
    echo "azurite: $*" >&2
    echo "azurite: 0 passed, 1 failed"
    exit 1
}
# shellcheck source=emulator/compat/common.sh
source "$here/common.sh"
unshare_cmd=()
compat_unshare || fail "no network namespace"
compat_need "node npm" "nodejs npm" "to run Azurite" || fail "no node"
compat_need ip iproute2 "to bring up loopback in the namespace" || fail "no ip"
compat_need openssl openssl "for Azurite's test certificate" || fail "no openssl"
compat_need python3 python3 "to read cargo's build messages" || fail "no python3"

work="$(mktemp -d "${TMPDIR:-/tmp}/azmi-azurite.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "azurite: installing Azurite $AZURITE_VERSION with npm ci into a throw-away directory"
mkdir -p "$work/azurite"
cp "$here/azurite/package.json" "$here/azurite/package-lock.json" "$work/azurite/"
(cd "$work/azurite" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
installed="$(cd "$work/azurite" && node -p 'require("./node_modules/azurite/package.json").version')"
[[ "$installed" == "$AZURITE_VERSION" ]] || fail "Azurite is $installed, expected $AZURITE_VERSION"

echo "azurite: a test CA and a certificate for 127.0.0.1"
mkdir -p "$work/tls"
(
    cd "$work/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -keyout ca.key -out ca.pem -subj "/CN=azmi Azurite test CA" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout key.pem -out leaf.csr -subj "/CN=127.0.0.1" 2>/dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >leaf.ext
    openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile leaf.ext -out cert.pem 2>/dev/null
) || fail "openssl could not make the certificates"

target="${CARGO_TARGET_DIR:-target}"
[[ "$target" = /* ]] || target="$repo/$target"
echo "azurite: building the test (azmi-hyper --features object_store --test azurite, target dir $target)"
test_bin="$(cd "$repo" && CARGO_TARGET_DIR="$target" timeout 1800 cargo test --locked --quiet \
    -p azmi-hyper --features object_store --test azurite --no-run --message-format=json \
    | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "azurite" and m.get("executable"):
        print(m["executable"])
')"
[[ -x "$test_bin" ]] || fail "the test binary was not built"

echo "azurite: running Azurite and the test in a network namespace with only loopback (${unshare_cmd[*]})"
log="$work/test.log"
rc=0
timeout 600 "${unshare_cmd[@]}" bash "$here/azurite.sh" --inside "$work" "$test_bin" 2>&1 | tee "$log" || rc=$?
passed=$(grep -c '^test .* ok$' "$log" || true)
failed=$(grep -cE '^test .* FAILED$|^FAIL: ' "$log" || true)
# The test's two ignored cases must both have run.
if [[ $((passed + failed)) -lt 2 ]]; then failed=$((2 - passed)); fi
if [[ $rc -ne 0 && $failed -eq 0 ]]; then failed=1; fi
echo "azurite: took $((SECONDS - started)) s"
echo "azurite: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
