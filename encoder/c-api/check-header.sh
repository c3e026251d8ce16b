#!/usr/bin/env bash
# Checks that the committed C header encoder/include/tracemark.h is what cbindgen
# generates from encoder/c-api/src/lib.rs with encoder/cbindgen.toml (CI runs this).
#
# Usage: encoder/c-api/check-header.sh            exit 1 and show a diff if stale
#        encoder/c-api/check-header.sh --update   regenerate the committed header
# Env:   CBINDGEN  the cbindgen binary (default: cbindgen on PATH, else ~/.cargo/bin/cbindgen)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
header="$here/../include/tracemark.h"
config="$here/../cbindgen.toml"
cbindgen="${CBINDGEN:-$(command -v cbindgen || echo "$HOME/.cargo/bin/cbindgen")}"
if [ ! -x "$cbindgen" ]; then
    echo "check-header.sh: cbindgen not found; install it with: cargo install --locked cbindgen" >&2
    exit 2
fi

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
# cbindgen warns about private items it skips; only errors matter.
(cd "$here" && "$cbindgen" --quiet --config "$config" --output "$tmp")

if [ "${1:-}" = "--update" ]; then
    cp "$tmp" "$header"
    echo "check-header.sh: wrote $header"
    exit 0
fi
if ! diff -u "$header" "$tmp"; then
    echo "check-header.sh: $header is stale; run encoder/c-api/check-header.sh --update and commit it" >&2
    exit 1
fi
echo "check-header.sh: $header is up to date"
