#!/usr/bin/env bash
# zstd vs gzip export benchmark (not a test): a fresh export of about SIZE_MIB of layer data
# (four layers; DATA `mixed`: half compressible text, half random, or `text`; see lib.sh) to an
# OCI layout, once with gzip layers (the default) and once with `-layer-compression zstd`
# (experimental, multi-threaded on every core), against the GNU baseline `tar -c | gzip -1 | sha256sum` over
# the same directories, in the same run.
#
#   bash bench/zstd-bench.sh [SIZE_MIB] [DATA]      (defaults: 1024 mixed)
#
# Prints seconds, MB/s, speed-up over our gzip export, peak memory and compressed sizes against
# gzip -1. Needs what export-bench.sh needs.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
size_mib=${1:-1024}
data=${2:-mixed}
work=$(mktemp -d /tmp/cnb-zstd-bench.XXXXXX)
reg_pid=
cleanup() { [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

. "$repo/bench/lib.sh"
bench_build exporter
exporter="$bindir/exporter"
bench_layers "$size_mib" "$data"
bench_run_image
run_layout="$work/layout/example.com/run/latest"
digest=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['manifests'][0]['digest'])" "$run_layout/index.json")
total_bytes=$(du -sb "$bp" | cut -f1)

# Baseline: the GNU pipeline over the same four directories, one after the other.
sync
read -r base_s _ < <(timed bash -c "for l in '$bp'/layer*/; do tar -C \"\$l\" -cf - . | gzip -1 | tee >(wc -c >> '$work/gzip.sizes') | sha256sum >/dev/null; done")
gzip_bytes=$(awk '{s+=$1} END {print s}' "$work/gzip.sizes")

# export CODEC : a fresh export into a layout root of its own; prints "seconds peak_kib bytes".
export_with() {
  local codec=$1 root="$work/out-$1"
  mkdir -p "$root/example.com/run"
  cp -a "$run_layout" "$root/example.com/run/latest"
  printf '[run-image]\nreference = "%s/example.com/run/latest@%s"\nimage = "example.com/run:latest"\n' "$root" "$digest" > "$layers/analyzed.toml"
  sync
  read -r s kib < <(timed env CNB_PLATFORM_API=0.15 CNB_EXPERIMENTAL_MODE=quiet CNB_LAYER_COMPRESSION="$codec" \
    "$exporter" -layout -layout-dir "$root" -app "$app" -layers "$layers" -launcher "$launcher" example.com/bench/app:latest)
  bytes=$(python3 - "$root/example.com/bench/app/latest" <<'PY'
import json, os, sys
root = sys.argv[1]
idx = json.load(open(os.path.join(root, "index.json")))
m = idx["manifests"][0]["digest"].split(":")[1]
man = json.load(open(os.path.join(root, "blobs", "sha256", m)))
print(sum(l["size"] for l in man["layers"][1:5]))
PY
)
  echo "$s $kib $bytes"
}
read -r gz_s gz_kib gz_bytes < <(export_with gzip)
read -r zs_s zs_kib zs_bytes < <(export_with zstd)

mb() { python3 -c "print(f'{$1/1e6:.1f}')"; }
rate() { python3 -c "print(f'{$total_bytes/$1/1e6:.1f}')"; }
echo
echo "layer data: $(mb "$total_bytes") MB ($data) in 4 layers ($(nproc) cores)"
printf '%-30s %8s %8s %12s %12s %14s\n' "" "seconds" "MB/s" "vs gzip exp" "peak MiB" "size vs gzip-1"
printf '%-30s %8s %8s %12s %12s %14s\n' "tar | gzip -1 | sha256sum" "$base_s" "$(rate "$base_s")" "-" "-" "1.000"
printf '%-30s %8s %8s %12s %12s %14s\n' "exporter, gzip layers" "$gz_s" "$(rate "$gz_s")" "1.00x" "$((gz_kib / 1024))" \
  "$(python3 -c "print(f'{$gz_bytes/$gzip_bytes:.3f}')")"
printf '%-30s %8s %8s %12s %12s %14s\n' "exporter, zstd layers" "$zs_s" "$(rate "$zs_s")" \
  "$(python3 -c "print(f'{$gz_s/$zs_s:.2f}x')")" "$((zs_kib / 1024))" "$(python3 -c "print(f'{$zs_bytes/$gzip_bytes:.3f}')")"
echo "compressed: gzip -1 $(mb "$gzip_bytes") MB, ours gzip $(mb "$gz_bytes") MB, ours zstd $(mb "$zs_bytes") MB"
