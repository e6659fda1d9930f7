#!/usr/bin/env bash
# Hands the index a bucket Wasm: admin_wasm_begin, admin_wasm_put_chunk in
# 1 MiB chunks, admin_wasm_commit (the index checks length and SHA-256).
#
#   scripts/upload-bucket-wasm.sh <index> <version> [module] [-- tool options]
#
# <index>    the index canister (its name in dfx.json/icp.yaml, or its id)
# <version>  a number higher than every version the index holds
# [module]   default target/canister/backend.wasm.gz (the packager's output)
# Tool: dfx when it is on PATH, else icp; TOOL=icp or TOOL=dfx chooses.
# Options after `--` go to the tool, e.g. `-- --network ic` (dfx) or
# `-- -e bridge` (icp). Call as one of the index's controllers.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,13p' "$0"; exit 2; }
index=$1
version=$2
shift 2
module=target/canister/backend.wasm.gz
if [ $# -gt 0 ] && [ "$1" != "--" ]; then module=$1; shift; fi
[ "${1:-}" = "--" ] && shift
extra=("$@")
tool=${TOOL:-$(command -v dfx >/dev/null && echo dfx || echo icp)}
chunk=$((1 << 20))
length=$(stat -c %s "$module")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Candid text of bytes: blob "\0a\ff...".
blob_of() { od -An -v -tx1 "$@" | tr -d ' \n' | sed 's/../\\&/g'; }

call() {
    local method=$1 file=$2
    if [ "$tool" = dfx ]; then
        dfx canister call "${extra[@]}" "$index" "$method" --argument-file "$file"
    else
        icp canister call "${extra[@]}" "$index" "$method" --args-file "$file"
    fi
}

sha=$(sha256sum "$module" | cut -c1-64 | sed 's/../\\&/g')
printf '(record { version = %d : nat32; sha256 = blob "%s"; length = %d : nat64 })' \
    "$version" "$sha" "$length" >"$work/begin"
call admin_wasm_begin "$work/begin"
offset=0
while [ "$offset" -lt "$length" ]; do
    printf '(%d : nat64, blob "%s")' "$offset" \
        "$(blob_of -j "$offset" -N "$chunk" "$module")" >"$work/chunk"
    call admin_wasm_put_chunk "$work/chunk"
    offset=$((offset + chunk))
done
echo '()' >"$work/commit"
call admin_wasm_commit "$work/commit"
