#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, outside CI:
#
#   fuzz/run.sh                      # each target 60 s
#   FUZZ_SECONDS=600 fuzz/run.sh     # each target 10 min
#   FUZZ_TARGETS=upload_ops fuzz/run.sh
#   FUZZ_MINIMIZE=1 fuzz/run.sh      # then fold what was found into fuzz/corpus (cmin)
#   FUZZ_SECONDS=0 FUZZ_MINIMIZE=1 fuzz/run.sh   # only that
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
        # 256 ops of at most 9 bytes each. Safe Rust end to end, so no
        # AddressSanitizer: it made each input about 9 times slower.
        upload_ops) max_len=2304 sanitizer=none ;;
        *) max_len=8192 sanitizer=address ;;
    esac
    # One target directory per sanitizer: switching flags rebuilds all.
    target_dir="$root/target/fuzz-$sanitizer"
    flags=(--target-dir "$target_dir" --sanitizer "$sanitizer")
    mkdir -p "$scratch/$target" "corpus/$target"
    if [ "$seconds" -gt 0 ]; then
        echo "== $target: ${seconds}s"
        cargo +nightly fuzz run "${flags[@]}" "$target" \
            "$scratch/$target" "corpus/$target" -- \
            -max_total_time="$seconds" -max_len="$max_len" -timeout=20 -print_final_stats=1
    fi
    if [ "${FUZZ_MINIMIZE:-0}" = 1 ]; then
        # cmin reduces both corpora to the inputs that add coverage; the
        # repository keeps the seeds and the FUZZ_KEEP (default 40) largest
        # of the rest, which cover the most on their own, so that replaying
        # them under `cargo test` stays quick.
        merged="$root/target/fuzz/merged/$target"
        rm -rf "$merged" && mkdir -p "$merged"
        cp "$scratch/$target"/* "corpus/$target"/* "$merged"/
        cargo +nightly fuzz cmin "${flags[@]}" "$target" "$merged" -- -max_len="$max_len"
        find "corpus/$target" -type f ! -name 'seed-*' -delete
        ls -S "$merged" | grep -v '^seed-' | head -n "${FUZZ_KEEP:-40}" |
            while read -r name; do cp "$merged/$name" "corpus/$target/"; done
        echo "== $target: $(ls "corpus/$target" | wc -l) inputs kept in fuzz/corpus/$target"
    fi
done
