#!/usr/bin/env bash
# Export benchmark (not a test): about SIZE_MIB of layer data (half compressible text, half
# random) in four buildpack layers, exported with our `exporter` to an OCI layout and to a
# local Distribution registry, against the GNU baseline `tar -c | gzip -1 | sha256sum` over the
# same directories, in the same run.
#
#   bash bench/export-bench.sh [SIZE_MIB]      (default 1024)
#
# Prints MB/s, the ratio to the baseline, compressed size against gzip -1, and peak memory.
# Needs: a Rust toolchain, umoci, busybox-static, docker-registry, GNU time (apt-get install
# umoci busybox-static docker-registry time).
# BENCH_LINK_MBIT=N adds an export over a loopback link limited to N Mbit/s (root, tc).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
size_mib=${1:-1024}
work=$(mktemp -d /tmp/cnb-export-bench.XXXXXX)
reg_pid=
cleanup() { [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

. "$repo/bench/lib.sh"
bench_build exporter
exporter="$bindir/exporter"
bench_layers "$size_mib"
bench_run_image
digest=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['manifests'][0]['digest'])" "$work/layout/example.com/run/latest/index.json")

total_bytes=$(du -sb "$bp" | cut -f1)
mb() { python3 -c "print(f'{$1/1e6:.1f}')"; }

# Baseline: the GNU pipeline over the same four directories, one after the other.
sync
read -r base_s _ < <(timed bash -c "for l in '$bp'/layer*/; do tar -C \"\$l\" -cf - . | gzip -1 | tee >(wc -c >> '$work/gzip.sizes') | sha256sum >/dev/null; done")
sleep 0.5
gzip_bytes=$(awk '{s+=$1} END {print s}' "$work/gzip.sizes")

# Ours, to an OCI layout.
printf '[run-image]\nreference = "%s/layout/example.com/run/latest@%s"\nimage = "example.com/run:latest"\n' "$work" "$digest" > "$layers/analyzed.toml"
read -r layout_s layout_kib < <(timed env CNB_PLATFORM_API=0.15 CNB_EXPERIMENTAL_MODE=quiet "$exporter" \
  -layout -layout-dir "$work/layout" -app "$app" -layers "$layers" -launcher "$launcher" example.com/bench/app:latest)
ours_bytes=$(python3 - "$work/layout/example.com/bench/app/latest" <<'PY'
import json, os, sys
root = sys.argv[1]
idx = json.load(open(os.path.join(root, "index.json")))
m = idx["manifests"][0]["digest"].split(":")[1]
man = json.load(open(os.path.join(root, "blobs", "sha256", m)))
print(sum(l["size"] for l in man["layers"][1:5]))
PY
)

# Ours, to a local registry (fresh storage, plain HTTP on loopback).
bench_registry off
skopeo copy -q --dest-tls-verify=false "oci:$work/layout/example.com/run/latest:latest" "docker://127.0.0.1:$port/run:latest"
reg_digest=$(skopeo inspect --tls-verify=false "docker://127.0.0.1:$port/run:latest" | python3 -c "import json,sys;print(json.load(sys.stdin)['Digest'])")
printf '[run-image]\nreference = "127.0.0.1:%s/run@%s"\nimage = "127.0.0.1:%s/run:latest"\n' "$port" "$reg_digest" "$port" > "$layers/analyzed.toml"
read -r reg_s reg_kib < <(timed env CNB_PLATFORM_API=0.15 "$exporter" \
  -app "$app" -layers "$layers" -launcher "$launcher" "127.0.0.1:$port/bench/app:latest")

# Optionally, to the same registry over a rate-limited loopback link (BENCH_LINK_MBIT, root and
# tc needed): where uploading, not compressing, is the bottleneck, as with a remote registry.
link_s=
if [ -n "${BENCH_LINK_MBIT:-}" ]; then
  tc qdisc add dev lo root tbf rate "${BENCH_LINK_MBIT}mbit" burst 256kb latency 400ms
  trap 'tc qdisc del dev lo root 2>/dev/null; cleanup' EXIT
  read -r link_s _ < <(timed env CNB_PLATFORM_API=0.15 "$exporter" \
    -app "$app" -layers "$layers" -launcher "$launcher" "127.0.0.1:$port/bench/app-link:latest")
  tc qdisc del dev lo root
fi

rate() { python3 -c "print(f'{$total_bytes/$1/1e6:.1f}')"; }
ratio() { python3 -c "print(f'{$base_s/$1:.2f}')"; }
echo
echo "layer data: $(mb "$total_bytes") MB in 4 layers ($(nproc) cores)"
printf '%-34s %8s %10s %9s %12s\n' "" "seconds" "MB/s" "vs base" "peak MiB"
printf '%-34s %8s %10s %9s %12s\n' "tar | gzip -1 | sha256sum" "$base_s" "$(rate "$base_s")" "1.00" "-"
printf '%-34s %8s %10s %9s %12s\n' "exporter -> OCI layout" "$layout_s" "$(rate "$layout_s")" "$(ratio "$layout_s")x" "$((layout_kib / 1024))"
printf '%-34s %8s %10s %9s %12s\n' "exporter -> registry (loopback)" "$reg_s" "$(rate "$reg_s")" "$(ratio "$reg_s")x" "$((reg_kib / 1024))"
[ -n "$link_s" ] && printf '%-34s %8s %10s %9s %12s\n' "exporter -> registry (${BENCH_LINK_MBIT} Mbit/s)" "$link_s" "$(rate "$link_s")" "$(ratio "$link_s")x" "-"
echo "compressed size: ours $(mb "$ours_bytes") MB, gzip -1 $(mb "$gzip_bytes") MB ($(python3 -c "print(f'{$ours_bytes/$gzip_bytes:.3f}')")x)"
