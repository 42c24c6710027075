# Shared by the compatibility scripts (run.sh, azurite.sh); sourced, not run.

# Sets the global array `unshare_cmd` to a command that creates fresh network and mount
# namespaces (as root, or with user namespaces). Fails, saying why, when neither works: the
# scripts refuse to run third-party clients or servers unisolated.
compat_unshare() {
    if timeout 10 unshare --net --mount true 2>/dev/null; then
        unshare_cmd=(unshare --net --mount)
    elif timeout 10 unshare --net --mount --map-root-user true 2>/dev/null; then
        unshare_cmd=(unshare --net --mount --map-root-user)
    else
        echo "compat: cannot create network and mount namespaces (unshare --net --mount failed); refusing to run unisolated" >&2
        return 1
    fi
}

# compat_need "<commands>" "<Debian packages>" "<what they are for>": installs the packages with
# apt-get when one of the commands is missing and this is root on Debian; else fails, saying why.
compat_need() {
    local commands="$1" packages="$2" why="$3" cmd missing=0
    for cmd in $commands; do
        command -v "$cmd" >/dev/null 2>&1 || missing=1
    done
    [[ $missing -eq 0 ]] && return 0
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        timeout 300 apt-get update -qq >/dev/null || return 1
        # shellcheck disable=SC2086 # a list of package names
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq $packages >/dev/null || return 1
        return 0
    fi
    echo "compat: $commands ($packages) needed $why" >&2
    return 1
}
