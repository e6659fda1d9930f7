#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, outside CI:
#
#   fuzz/run.sh                      # each target 60 s
#   FUZZ_SECONDS=600 fuzz/run.sh     # each target 10 min
#   FUZZ_TARGETS=upload_ops fuzz/run.sh
#   FUZZ_MINIMIZE=1 fuzz/run.sh      # then fold what was found into fuzz/corpus (cmin)
#
# Needs `cargo install cargo-fuzz` and a nightly toolchain. New inputs go to
# a scratch corpus under target/fuzz, seeded from fuzz/corpus/<target>, so
# the corpus kept in the repository (and replayed by `cargo test`) only
# changes with FUZZ_MINIMIZE=1. Crashes are written to fuzz/artifacts/.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
seconds="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-candid_args upload_ops}"
scratch="$root/target/fuzz/corpus"

cd "$here"
for target in $targets; do
    case "$target" in
        # 256 ops of at most 8 bytes each. Safe Rust end to end, so no
        # AddressSanitizer: it made each input about 9 times slower.
        upload_ops) max_len=2048 sanitizer=none ;;
        *) max_len=8192 sanitizer=address ;;
    esac
    # One target directory per sanitizer: switching flags rebuilds all.
    target_dir="$root/target/fuzz-$sanitizer"
    flags=(--target-dir "$target_dir" --sanitizer "$sanitizer")
    mkdir -p "$scratch/$target" "corpus/$target"
    echo "== $target: ${seconds}s"
    cargo +nightly fuzz run "${flags[@]}" "$target" \
        "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len="$max_len" -timeout=20 -print_final_stats=1
    if [ "${FUZZ_MINIMIZE:-0}" = 1 ]; then
        # cmin keeps the smallest set of inputs covering what both corpora
        # cover, in place of the repository's corpus.
        cp -n "$scratch/$target"/* "corpus/$target"/ 2>/dev/null || true
        cargo +nightly fuzz cmin "${flags[@]}" "$target" "corpus/$target" -- -max_len="$max_len"
    fi
done
