# Helpers shared by the project's scripts. Source it after setting `root` to the
# repository's top directory:
#   root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
#   . "$root/scripts/lib.sh"
# It defines no other variable and changes no option of the caller.

# step TEXT: a step banner, `==> [SECONDS] TEXT`, SECONDS since this script started
# (bash's SECONDS), so that a CI log shows where its time goes.
step() { printf '\n==> [%4ds] %s\n' "$SECONDS" "$*"; }

# need_pkg COMMAND DEBIAN-PACKAGE: when COMMAND (a name on PATH or a path) is missing,
# installs the package if running as root with apt-get (one package per call: some
# combinations fail with "Resolve generated breaks"), else says what to install and
# fails.
need_pkg() {
    { command -v "$1" >/dev/null 2>&1 || [ -e "$1" ]; } && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        if [ -z "${TRACEMARK_APT_UPDATED:-}" ]; then
            apt-get update -qq >/dev/null
            TRACEMARK_APT_UPDATED=1
        fi
        apt-get install -y -qq "$2" >/dev/null
    else
        echo "$1 is missing: install it (Debian: apt-get install $2)" >&2
        return 1
    fi
}

# need_debs [--no-install-recommends] PACKAGE...: installs the Debian packages that are
# not installed ("install ok installed", not merely known to dpkg), one per apt-get call,
# when running as root with apt-get; else names the missing ones and fails. Quick when
# nothing is missing.
need_debs() {
    local p missing=() opts=()
    if [ "${1:-}" = --no-install-recommends ]; then
        opts=(--no-install-recommends)
        shift
    fi
    for p in "$@"; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "missing Debian packages: ${missing[*]} (install them as root, or run this as root)" >&2
        return 1
    fi
    echo "installing ${missing[*]}" >&2
    if [ -z "${TRACEMARK_APT_UPDATED:-}" ]; then
        apt-get update -qq >/dev/null
        TRACEMARK_APT_UPDATED=1
    fi
    for p in "${missing[@]}"; do
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${opts[@]}" "$p" >/dev/null
    done
}

# cargo_target_dir: where cargo builds, as cargo finds it (CARGO_TARGET_DIR, else
# target/ at the top of the repository).
cargo_target_dir() { printf '%s\n' "${CARGO_TARGET_DIR:-$root/target}"; }

# tracemark_bin [--release]: builds the `tracemark` binary (package tracemark-cli) and
# prints its path.
tracemark_bin() {
    local profile=debug
    if [ "${1:-}" = --release ]; then
        profile=release
    fi
    cargo build -q --manifest-path "$root/Cargo.toml" -p tracemark-cli --bin tracemark ${1:+"$1"} >&2
    printf '%s\n' "$(cargo_target_dir)/$profile/tracemark"
}
