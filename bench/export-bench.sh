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
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
size_mib=${1:-1024}
work=$(mktemp -d /tmp/cnb-export-bench.XXXXXX)
reg_pid=
cleanup() { [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "building release binaries..." >&2
# The same static release builds the quick start and the release instructions use.
target=x86_64-unknown-linux-gnu
(cd "$repo" && RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release --target "$target" -p exporter \
  && RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --profile launcher --target "$target" -p launcher)
exporter="$repo/target/$target/release/exporter"
launcher="$repo/target/$target/launcher/launcher"

layers="$work/layers"; bp="$layers/bench_bp"; app="$work/app"
mkdir -p "$bp" "$app" "$layers/config"
per_layer=$((size_mib / 4))
echo "generating ${size_mib} MiB in 4 layers..." >&2
python3 - "$bp" "$per_layer" <<'PY'
import os, random, sys
root, mib = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10))) for _ in range(2000)]
for n in range(1, 5):
    layer = os.path.join(root, f"layer{n}")
    os.makedirs(layer, exist_ok=True)
    half = mib * 1024 * 1024 // 2
    files = 8
    for f in range(files):
        with open(os.path.join(layer, f"text-{f}.txt"), "w") as out:
            written = 0
            while written < half // files:
                line = " ".join(rng.choice(words) for _ in range(12)) + "\n"
                out.write(line); written += len(line)
        with open(os.path.join(layer, f"random-{f}.bin"), "wb") as out:
            out.write(os.urandom(half // files))
    with open(os.path.join(root, f"layer{n}.toml"), "w") as t:
        t.write("[types]\nlaunch = true\n")
PY
printf '[[group]]\nid = "bench/bp"\nversion = "1"\napi = "0.12"\n' > "$layers/group.toml"
printf '[[processes]]\ntype = "web"\ncommand = ["true"]\nargs = []\ndirect = true\nbuildpack-id = "bench/bp"\n' > "$layers/config/metadata.toml"
echo "hello" > "$app/file"

bash "$repo/examples/run-image/build.sh" "$work/layout/example.com/run/latest" >/dev/null
digest=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['manifests'][0]['digest'])" "$work/layout/example.com/run/latest/index.json")

total_bytes=$(du -sb "$bp" | cut -f1)
mb() { python3 -c "print(f'{$1/1e6:.1f}')"; }
timed() { # label cmd... -> prints "seconds peak_kib"
  /usr/bin/time -f "%e %M" -o "$work/time.out" "$@" >"$work/cmd.log" 2>&1 || { cat "$work/cmd.log" >&2; exit 1; }
  cat "$work/time.out"
}

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
port=$(python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])")
cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 & reg_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
skopeo copy -q --dest-tls-verify=false "oci:$work/layout/example.com/run/latest:latest" "docker://127.0.0.1:$port/run:latest"
reg_digest=$(skopeo inspect --tls-verify=false "docker://127.0.0.1:$port/run:latest" | python3 -c "import json,sys;print(json.load(sys.stdin)['Digest'])")
printf '[run-image]\nreference = "127.0.0.1:%s/run@%s"\nimage = "127.0.0.1:%s/run:latest"\n' "$port" "$reg_digest" "$port" > "$layers/analyzed.toml"
read -r reg_s reg_kib < <(timed env CNB_PLATFORM_API=0.15 "$exporter" \
  -app "$app" -layers "$layers" -launcher "$launcher" "127.0.0.1:$port/bench/app:latest")

rate() { python3 -c "print(f'{$total_bytes/$1/1e6:.1f}')"; }
ratio() { python3 -c "print(f'{$base_s/$1:.2f}')"; }
echo
echo "layer data: $(mb "$total_bytes") MB in 4 layers ($(nproc) cores)"
printf '%-34s %8s %10s %9s %12s\n' "" "seconds" "MB/s" "vs base" "peak MiB"
printf '%-34s %8s %10s %9s %12s\n' "tar | gzip -1 | sha256sum" "$base_s" "$(rate "$base_s")" "1.00" "-"
printf '%-34s %8s %10s %9s %12s\n' "exporter -> OCI layout" "$layout_s" "$(rate "$layout_s")" "$(ratio "$layout_s")x" "$((layout_kib / 1024))"
printf '%-34s %8s %10s %9s %12s\n' "exporter -> registry (loopback)" "$reg_s" "$(rate "$reg_s")" "$(ratio "$reg_s")x" "$((reg_kib / 1024))"
echo "compressed size: ours $(mb "$ours_bytes") MB, gzip -1 $(mb "$gzip_bytes") MB ($(python3 -c "print(f'{$ours_bytes/$gzip_bytes:.3f}')")x)"
