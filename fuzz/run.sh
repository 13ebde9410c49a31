#!/usr/bin/env bash
# Builds every fuzz target and runs each for <seconds>, one at a time on one core.
#
#   fuzz/run.sh <seconds> [target...]
#
# The committed seeds (fuzz/corpus/<target>) and regression inputs (fuzz/regressions/<target>)
# are read, never written: new corpus entries, crash artifacts and logs go to $FUZZ_WORK
# (default: a fresh temp dir, removed again when no target crashed; a FUZZ_WORK given is always
# kept). Every regression input is replayed first. Exit status: 0 when no
# target crashed, 1 when one did, and 0 with a message when no nightly compiler is usable (the
# targets need -Zsanitizer; RUSTC_BOOTSTRAP=1 on a stable toolchain is tried before giving up).
#
# Environment: FUZZ_WORK (work dir), FUZZ_SANITIZER (address, the default, or none),
# FUZZ_PROFILE (release, the default, for long runs; dev builds in a fraction of the time, for
# CI's smoke run), FUZZ_TARGET_DIR (cargo target dir, default fuzz/target), FUZZ_FORK_TARGETS (targets run with -fork=1 -ignore_crashes=1, so a known crash does
# not end the run; crashes are still counted and reported).
set -euo pipefail

seconds=${1:?usage: fuzz/run.sh <seconds> [target...]}
shift
cd "$(dirname "$0")"
all_targets=(toml_files json_docs image_ref tar_extract)
targets=("${@:-${all_targets[@]}}")
work=${FUZZ_WORK:-$(mktemp -d -t cnb-fuzz.XXXXXX)}
sanitizer=${FUZZ_SANITIZER:-address}
profile=${FUZZ_PROFILE:-release}
target_dir=${FUZZ_TARGET_DIR:-target}
mkdir -p "$work"

# A toolchain that accepts -Z flags: nightly if rustup has it, else stable with RUSTC_BOOTSTRAP.
toolchain=()
if rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=(+nightly)
elif RUSTC_BOOTSTRAP=1 rustc -Z help >/dev/null 2>&1; then
  export RUSTC_BOOTSTRAP=1
else
  echo "fuzz: no nightly toolchain and RUSTC_BOOTSTRAP does not work: skipping the fuzz run" >&2
  exit 0
fi
# libfuzzer-sys compiles libFuzzer (C++).
if ! command -v c++ >/dev/null 2>&1; then
  echo "fuzz: no C++ compiler (c++) for libFuzzer: skipping the fuzz run" >&2
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  if ! cargo install cargo-fuzz --locked; then
    echo "fuzz: cargo-fuzz could not be installed (offline?): skipping the fuzz run" >&2
    exit 0
  fi
fi

start=$(date +%s)
build=(-O)
[[ $profile == dev ]] && build=(--dev)
cargo "${toolchain[@]}" fuzz build "${build[@]}" --sanitizer "$sanitizer" --target-dir "$target_dir"
echo "fuzz: build took $(($(date +%s) - start)) s"

bin_dir=$target_dir/x86_64-unknown-linux-gnu/$([[ $profile == dev ]] && echo debug || echo release)
common=(-rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=30 -print_final_stats=1)
failed=()
for target in "${targets[@]}"; do
  corpus=$work/corpus/$target
  artifacts=$work/artifacts/$target/
  mkdir -p "$corpus" "$artifacts"
  if [[ -d regressions/$target ]] && compgen -G "regressions/$target/*" >/dev/null; then
    # Replaying a directory runs each file once and fails on the first crash.
    if ! "$bin_dir/$target" "${common[@]}" -artifact_prefix="$artifacts" \
      "regressions/$target"/* >"$work/$target.regressions.log" 2>&1; then
      echo "fuzz: $target: a regression input crashes (see $work/$target.regressions.log)" >&2
      failed+=("$target")
      continue
    fi
  fi
  mode=()
  if [[ " ${FUZZ_FORK_TARGETS:-} " == *" $target "* ]]; then
    mode=(-fork=1 -ignore_crashes=1)
  fi
  seeds=()
  [[ -d corpus/$target ]] && seeds=("corpus/$target")
  echo "fuzz: $target for ${seconds}s (log: $work/$target.log)"
  status=0
  "$bin_dir/$target" "${common[@]}" "${mode[@]}" -max_total_time="$seconds" \
    -artifact_prefix="$artifacts" "$corpus" "${seeds[@]}" >"$work/$target.log" 2>&1 || status=$?
  grep -E '^(#[0-9]+|stat::)' "$work/$target.log" | grep -E 'DONE|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' || true
  crashes=$(find "$artifacts" -type f | wc -l)
  echo "fuzz: $target: exit $status, $(find "$corpus" -type f | wc -l) corpus files, $crashes crash artifacts"
  if ((status != 0 || crashes > 0)); then
    failed+=("$target")
    tail -n 40 "$work/$target.log" >&2
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: total $(($(date +%s) - start)) s; work dir $work" >&2
  echo "fuzz: crashes in: ${failed[*]}" >&2
  exit 1
fi
if [[ -z ${FUZZ_WORK:-} ]]; then
  rm -rf "$work"
  echo "fuzz: total $(($(date +%s) - start)) s; no crash, work dir removed"
else
  echo "fuzz: total $(($(date +%s) - start)) s; work dir $work"
fi
