#!/usr/bin/env bash
# Microsoft's own client must accept azmi-emulator.
#
# Sources: IMDS, App Service, Cloud Shell, Azure ML, Service Fabric and Azure Arc, and Entra with
# a client secret over https (the client trusts the emulator's certificate through
# REQUESTS_CA_BUNDLE). For Arc, the
# namespace also has its own mounts: a tmpfs over /var/opt holds /var/opt/azcmagent/tokens, where
# the Python client looks for the agent's key files, and the emulator writes them there; nothing
# outside the namespace sees it.
#
# Node's @azure/identity 4.13.1 (msal-node 5.6.0, pinned in package-lock.json) is checked on IMDS
# and App Service the same way, from a throw-away `npm ci`.
#
# Builds the emulator, installs azure-identity 1.27.0 (msal 1.39.0) into a throw-away venv,
# confirms from the installed source that the client honours AZURE_POD_IDENTITY_AUTHORITY_HOST
# (so IMDS traffic goes to the emulator and never to 169.254.169.254), then runs the emulator
# and the Python checks inside a fresh network namespace that has only loopback. Prints
# `compat: N passed, M failed` and exits non-zero on any failure.
#
# `azmi serve` (one cache for every process on a host) is checked the same way: 50 concurrent
# Python processes and a few Node ones ask it for two identities and two resources, and the
# emulator behind it must see exactly one request per identity and resource.
#
# Usage, from the repository root:   bash emulator/compat/run.sh
# Honours CARGO_TARGET_DIR (default: target/). Needs root (or user namespaces) for unshare.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

# Fixed, fake identities for the checks.
UA_CLIENT="11111111-2222-3333-4444-555555555555"
UA_OBJECT="66666666-7777-8888-9999-000000000000"
UA_RESOURCE="/subscriptions/00000000-0000-0000-0000-00000000000b/resourcegroups/compat/providers/Microsoft.ManagedIdentity/userAssignedIdentities/compat"
UNKNOWN_CLIENT="99999999-0000-0000-0000-000000000000"
ENTRA_CLIENT="22222222-3333-4444-5555-666666666666"
ENTRA_SECRET="compat-client-secret-4f1d"
SOURCES=(imds app-service cloud-shell azure-ml service-fabric arc)
# Sources Node's @azure/identity is checked on as well.
NODE_SOURCES=(imds app-service)
# `azmi serve`: the resources its clients ask for, and how many Python and Node processes.
SERVE_RESOURCES=("https://vault.azure.net" "https://storage.azure.com")
SERVE_PYTHON_CLIENTS=50
SERVE_NODE_CLIENTS=4
# The checks serve_checks prints.
SERVE_CHECKS=4

# --------------------------------------------------------------------------------------------
# Inside the namespace: starts "$bin" with the remaining arguments in the background, output to
# $1 and errors to $2, sets emu_pid, and waits (at most 20 s) for its ready line.
start_emulator() {
    local out="$1" err="$2"
    shift 2
    "$bin" "$@" >"$out" 2>"$err" &
    emu_pid=$!
    local i
    for i in $(seq 1 200); do
        grep -q '^# azmi-emulator ready' "$out" 2>/dev/null && return 0
        if ! kill -0 "$emu_pid" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
    return 1
}

# Inside the namespace: `azmi serve` in front of an IMDS emulator, asked by many Python and Node
# processes at once for two identities and two resources. Prints $SERVE_CHECKS PASS/FAIL lines
# and returns the number of failures. Arguments: emulator binary, azmi binary, venv python,
# scratch directory.
serve_checks() {
    local bin="$1" azmi="$2" py="$3" work="$4"
    local out="$work/emulator-serve.out" failures=0
    if ! start_emulator "$out" "$work/emulator-serve.err" --source imds \
        --user-assigned "client_id=$UA_CLIENT,object_id=$UA_OBJECT,resource_id=$UA_RESOURCE"; then
        echo "FAIL: serve: the emulator did not start: $(cat "$work/emulator-serve.err")"
        return "$SERVE_CHECKS"
    fi
    local exports=() system_client control
    mapfile -t exports < <(sed -n 's/^export //p' "$out")
    system_client="$(sed -n 's/^# system-assigned: client_id=\([^ ]*\).*/\1/p' "$out")"
    control="$(sed -n 's/^# azmi-emulator ready: .*(control: \(http[^ ]*\)\/__emulator\/requests).*/\1/p' "$out")"
    env -i PATH=/usr/bin:/bin HOME="$work" "${exports[@]}" \
        "$azmi" serve --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
    serve_pid=$!
    local i
    for i in $(seq 1 200); do
        grep -q '^export ' "$work/serve.out" 2>/dev/null && break
        sleep 0.1
    done
    local serve_export
    serve_export="$(sed -n 's/^export //p' "$work/serve.out")"
    if [[ -z "$serve_export" ]]; then
        echo "FAIL: serve: azmi serve did not start: $(cat "$work/serve.err")"
        return "$SERVE_CHECKS"
    fi
    # Client i asks for resource i mod 2, as the system identity or (every other pair) the
    # user-assigned one: each of the four identity × resource pairs many times, all at once.
    local pids=() resource client appid bad=0 pid
    for i in $(seq 0 $((SERVE_PYTHON_CLIENTS + SERVE_NODE_CLIENTS - 1))); do
        resource="${SERVE_RESOURCES[$((i % 2))]}"
        if (( (i / 2) % 2 )); then client="$UA_CLIENT" appid="$UA_CLIENT"; else client="" appid="$system_client"; fi
        if (( i < SERVE_PYTHON_CLIENTS )); then
            env -i PATH=/usr/bin:/bin HOME="$work" PYTHONDONTWRITEBYTECODE=1 "$serve_export" \
                timeout 120 "$py" "$here/serve_check.py" --client \
                --resource "$resource" --client-id "$client" --appid "$appid" 2>>"$work/serve-python.err" &
        else
            env -i PATH=/usr/bin:/bin HOME="$work" "$serve_export" \
                timeout 120 node "$work/node/serve_node_client.mjs" "$resource" "$client" "$appid" \
                2>>"$work/serve-node.err" &
        fi
        pids+=("$!")
    done
    for pid in "${pids[@]:0:SERVE_PYTHON_CLIENTS}"; do wait "$pid" || bad=$((bad + 1)); done
    if [[ $bad -eq 0 ]]; then
        echo "PASS: serve: $SERVE_PYTHON_CLIENTS concurrent Python processes each got a valid token"
    else
        echo "FAIL: serve: $bad of $SERVE_PYTHON_CLIENTS Python processes got no valid token: $(head -c 2000 "$work/serve-python.err")"
        failures=$((failures + 1))
    fi
    bad=0
    for pid in "${pids[@]:SERVE_PYTHON_CLIENTS}"; do wait "$pid" || bad=$((bad + 1)); done
    if [[ $bad -eq 0 ]]; then
        echo "PASS: serve: $SERVE_NODE_CLIENTS concurrent Node processes each got a valid token"
    else
        echo "FAIL: serve: $bad of $SERVE_NODE_CLIENTS Node processes got no valid token: $(head -c 2000 "$work/serve-node.err")"
        failures=$((failures + 1))
    fi
    local expect=()
    for resource in "${SERVE_RESOURCES[@]}"; do expect+=(--expect "$resource," --expect "$resource,$UA_CLIENT"); done
    env -i PATH=/usr/bin:/bin HOME="$work" PYTHONDONTWRITEBYTECODE=1 \
        timeout 60 "$py" "$here/serve_check.py" --verify --control "$control" \
        --clients $((SERVE_PYTHON_CLIENTS + SERVE_NODE_CLIENTS)) "${expect[@]}" || failures=$((failures + 1))
    # SIGTERM: a clean exit, and not one token in anything it printed.
    local rc=0
    kill -TERM "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" || rc=$?
    serve_pid=""
    if [[ $rc -eq 0 ]] && ! grep -q 'eyJ' "$work/serve.out" "$work/serve.err"; then
        echo "PASS: serve: SIGTERM stops it with status 0, and no token is in its output"
    else
        echo "FAIL: serve: exit status $rc after SIGTERM, or a token in its output: $(tail -c 2000 "$work/serve.err")"
        failures=$((failures + 1))
    fi
    kill "$emu_pid" 2>/dev/null || true
    wait "$emu_pid" 2>/dev/null || true
    emu_pid=""
    return "$failures"
}

# Inside the namespace: bring up loopback, prove nothing else exists, run the checks.
# Arguments: emulator binary, venv python, scratch directory, azmi binary.
inside() {
    local bin="$1" py="$2" work="$3" azmi="$4"
    ip link set lo up
    local links
    links="$(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort -u | tr '\n' ' ')"
    if [[ "$links" != "lo " ]]; then
        echo "FAIL: isolation: interfaces other than loopback exist: $links"
        return 1
    fi
    if [[ -n "$(ip route show)" || -n "$(ip -6 route show | grep -v '^\(::1\|fe80\)' || true)" ]]; then
        echo "FAIL: isolation: the namespace has routes beyond loopback"
        return 1
    fi

    # Global, not local: the traps run after this function has returned. A timeout's TERM
    # must not leave an emulator behind either.
    emu_pid=""
    serve_pid=""
    trap 'for p in "${emu_pid:-}" "${serve_pid:-}"; do if [[ -n "$p" ]]; then kill "$p" 2>/dev/null || true; fi; done' EXIT
    trap 'exit 143' TERM INT

    # The agent's token directory, private to this mount namespace.
    if [[ -d /var/opt ]]; then
        mount -t tmpfs tmpfs /var/opt
    else
        mount -t tmpfs tmpfs /var
    fi
    mkdir -p /var/opt/azcmagent/tokens

    local source failures=0
    for source in "${SOURCES[@]}"; do
        local out="$work/emulator-$source.out"
        local extra=()
        if [[ "$source" == arc ]]; then extra=(--arc-key-dir /var/opt/azcmagent/tokens); fi
        if ! start_emulator "$out" "$work/emulator-$source.err" --source "$source" "${extra[@]}" \
            --user-assigned "client_id=$UA_CLIENT,object_id=$UA_OBJECT,resource_id=$UA_RESOURCE"; then
            echo "FAIL: $source: the emulator did not start: $(cat "$work/emulator-$source.err")"
            failures=$((failures + 1))
            kill "$emu_pid" 2>/dev/null || true
            emu_pid=""
            continue
        fi
        local exports=()
        mapfile -t exports < <(sed -n 's/^export //p' "$out")
        local system_client control
        system_client="$(sed -n 's/^# system-assigned: client_id=\([^ ]*\).*/\1/p' "$out")"
        control="$(sed -n 's/^# azmi-emulator ready: .*(control: \(http[^ ]*\)\/__emulator\/requests).*/\1/p' "$out")"

        # A clean environment: only what the emulator printed, so no Azure or proxy variable
        # from the caller can steer the client elsewhere.
        local rc=0
        env -i PATH=/usr/bin:/bin HOME="$work" PYTHONDONTWRITEBYTECODE=1 "${exports[@]}" \
            timeout 120 "$py" "$here/azure_identity_check.py" \
            --source "$source" \
            --system-client-id "$system_client" \
            --user-assigned-client-id "$UA_CLIENT" \
            --unknown-client-id "$UNKNOWN_CLIENT" \
            --control "$control" || rc=$?
        if [[ $rc -ne 0 ]]; then failures=$((failures + 1)); fi
        if [[ " ${NODE_SOURCES[*]} " == *" $source "* ]]; then
            rc=0
            env -i PATH=/usr/bin:/bin HOME="$work" "${exports[@]}" \
                timeout 120 node "$work/node/node_identity_check.mjs" \
                --source "$source" \
                --control "$control" \
                --system-client-id "$system_client" \
                --user-assigned-client-id "$UA_CLIENT" \
                --unknown-client-id "$UNKNOWN_CLIENT" || rc=$?
            if [[ $rc -ne 0 ]]; then failures=$((failures + 1)); fi
        fi

        kill "$emu_pid" 2>/dev/null || true
        wait "$emu_pid" 2>/dev/null || true
        emu_pid=""
    done

    # Entra with a client secret, over https: the client trusts the emulator's certificate.
    local out="$work/emulator-entra.out" root="$work/entra-root.pem"
    # A secret without characters the export line would quote (the lines are used verbatim).
    if ! start_emulator "$out" "$work/emulator-entra.err" --source entra --tls-root-out "$root" \
        --app "client_id=$ENTRA_CLIENT,secret=$ENTRA_SECRET"; then
        echo "FAIL: entra: the emulator did not start: $(cat "$work/emulator-entra.err")"
        failures=$((failures + 1))
    else
        local exports=() control rc=0
        mapfile -t exports < <(sed -n 's/^export //p' "$out")
        control="$(sed -n 's/^# azmi-emulator ready: .*(control: \(http[^ ]*\)\/__emulator\/requests).*/\1/p' "$out")"
        env -i PATH=/usr/bin:/bin HOME="$work" PYTHONDONTWRITEBYTECODE=1 "${exports[@]}" \
            REQUESTS_CA_BUNDLE="$root" SSL_CERT_FILE="$root" \
            timeout 120 "$py" "$here/azure_identity_check.py" \
            --source entra \
            --system-client-id "" \
            --user-assigned-client-id "$UA_CLIENT" \
            --unknown-client-id "$UNKNOWN_CLIENT" \
            --control "$control" || rc=$?
        if [[ $rc -ne 0 ]]; then failures=$((failures + 1)); fi
    fi
    kill "$emu_pid" 2>/dev/null || true
    wait "$emu_pid" 2>/dev/null || true
    emu_pid=""

    local rc=0
    serve_checks "$bin" "$azmi" "$py" "$work" || rc=$?
    failures=$((failures + rc))
    return "$failures"
}

if [[ "${1:-}" == "--inside" ]]; then
    rc=0
    inside "$2" "$3" "$4" "$5" || rc=$?
    exit "$rc"
fi

# --------------------------------------------------------------------------------------------
# Outside: isolation first (refuse to run the client at all without it), then build and venv.
started=$SECONDS

# shellcheck source=emulator/compat/common.sh
source "$here/common.sh"
unshare_cmd=()
if ! compat_unshare \
    || ! compat_need "node npm" "nodejs npm" "for the @azure/identity check" \
    || ! compat_need ip iproute2 "to bring up loopback in the namespace"; then
    echo "compat: 0 passed, 1 failed"
    exit 1
fi

target="${CARGO_TARGET_DIR:-target}"
[[ "$target" = /* ]] || target="$repo/$target"
echo "compat: building azmi-emulator and the azmi command (target dir $target)"
(cd "$repo" && CARGO_TARGET_DIR="$target" timeout 1800 cargo build --quiet -p azmi-emulator)
(cd "$repo" && CARGO_TARGET_DIR="$target" timeout 1800 cargo build --quiet -p azmi-ureq --features cli --bin azmi)
bin="$target/debug/azmi-emulator"
azmi="$target/debug/azmi"

work="$(mktemp -d "${TMPDIR:-/tmp}/azmi-compat.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "compat: installing azure-identity into a throw-away venv"
timeout 300 python3 -m venv "$work/venv"
timeout 900 "$work/venv/bin/pip" install --quiet --disable-pip-version-check \
    --requirement "$here/requirements.txt"
py="$work/venv/bin/python"
echo "compat: installing @azure/identity with npm ci into a throw-away directory"
mkdir -p "$work/node"
cp "$here/package.json" "$here/package-lock.json" "$here/node_identity_check.mjs" \
    "$here/serve_node_client.mjs" "$work/node/"
(cd "$work/node" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
if [[ "$(cd "$work/node" && node -p 'JSON.parse(require("fs").readFileSync("node_modules/@azure/identity/package.json")).version')" != "4.13.1" ]]; then
    echo "compat: @azure/identity is not 4.13.1; not running it" >&2
    echo "compat: 0 passed, 1 failed"
    exit 1
fi

# Read the installed client before running it: its IMDS request must go to
# AZURE_POD_IDENTITY_AUTHORITY_HOST, or it would aim at 169.254.169.254. (The namespace would
# stop it anyway; this check keeps the test meaningful and fails loudly if a release changes.)
if ! timeout 60 "$py" - <<'PY'
import inspect, sys
import azure.identity, msal
from azure.identity._credentials import imds
import msal.managed_identity as mi
problems = []
if azure.identity.__version__ != "1.27.0":
    problems.append(f"azure-identity is {azure.identity.__version__}, expected 1.27.0")
if msal.__version__ != "1.39.0":
    problems.append(f"msal is {msal.__version__}, expected 1.39.0")
for name, fn in [("msal _obtain_token_on_azure_vm", mi._obtain_token_on_azure_vm),
                 ("azure-identity imds._get_request", imds._get_request)]:
    if "AZURE_POD_IDENTITY_AUTHORITY_HOST" not in inspect.getsource(fn):
        problems.append(f"{name} does not read AZURE_POD_IDENTITY_AUTHORITY_HOST")
if "AZURE_POD_IDENTITY_AUTHORITY_HOST" not in inspect.getsource(imds.ImdsCredential.__init__):
    problems.append("ImdsCredential does not skip its probe for AZURE_POD_IDENTITY_AUTHORITY_HOST")
for p in problems:
    print(f"compat: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
then
    echo "compat: the installed client does not honour AZURE_POD_IDENTITY_AUTHORITY_HOST; not running it" >&2
    echo "compat: 0 passed, 1 failed"
    exit 1
fi

echo "compat: running the checks in a network namespace with only loopback (${unshare_cmd[*]})"
log="$work/checks.log"
rc=0
timeout 600 "${unshare_cmd[@]}" bash "$here/run.sh" --inside "$bin" "$py" "$work" "$azmi" 2>&1 | tee "$log" || rc=$?
passed=$(grep -c '^PASS: ' "$log" || true)
failed=$(grep -c '^FAIL: ' "$log" || true)
# Three checks per source and client, two for Entra with a client secret, and azmi serve's.
expected=$((3 * ${#SOURCES[@]} + 3 * ${#NODE_SOURCES[@]} + 2 + SERVE_CHECKS))
if [[ $rc -ne 0 && $failed -eq 0 ]]; then failed=1; fi
if [[ $((passed + failed)) -lt $expected ]]; then failed=$((failed + expected - passed - failed)); fi
echo "compat: took $((SECONDS - started)) s"
echo "compat: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
