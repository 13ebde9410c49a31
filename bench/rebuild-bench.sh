#!/usr/bin/env bash
# Rebuild benchmark (not a test): the same ~SIZE_MIB of layer data as export-bench.sh in four
# buildpack layers, exported fresh to a local Distribution registry; then, after the real
# `analyzer` has read that image back as the previous image, a no-op export of the unchanged
# layers; the same as a platform runs it (fresh export with a volume cache, then a new layers
# dir restored from the cache by the `restorer`, then a no-op export); then a
# `rebaser -run-image` onto a second run image (the first plus one layer).
#
#   bash bench/rebuild-bench.sh [SIZE_MIB]      (default 1024)
#
# Prints the fresh and no-op export times (target: no-op < 10% of fresh), what the no-op
# uploaded (blob upload PUTs and PATCHes from the registry access log, and the bytes of new
# blobs in the registry's storage; target: no layer), and for the rebase its time, the
# requests in the access log and the blob uploads/downloads (target: no layer bytes, < 1 s).
# Needs what export-bench.sh needs, plus skopeo.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
size_mib=${1:-1024}
work=$(mktemp -d /tmp/cnb-rebuild-bench.XXXXXX)
reg_pid=
cleanup() { [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

. "$repo/bench/lib.sh"
bench_build exporter analyzer restorer rebaser
bench_layers "$size_mib"
bench_run_image
bench_registry on
host="127.0.0.1:$port"
export CNB_PLATFORM_API=0.15 CNB_INSECURE_REGISTRIES="$host"

# Two run images: the example one, and the same with one more layer.
run1="$work/layout/example.com/run/latest"
run2="$work/layout/example.com/run2/latest"
mkdir -p "$(dirname "$run2")"; cp -a "$run1" "$run2"
echo run2 > "$work/run2-marker"
umoci insert --image "$run2:latest" "$work/run2-marker" /etc/run2-marker >/dev/null
skopeo copy -q --dest-tls-verify=false "oci:$run1:latest" "docker://$host/run:latest"
skopeo copy -q --dest-tls-verify=false "oci:$run2:latest" "docker://$host/run2:latest"
digest_of() { skopeo inspect --tls-verify=false "docker://$1" | python3 -c "import json,sys;print(json.load(sys.stdin)['Digest'])"; }
run_digest=$(digest_of "$host/run:latest")
image="$host/bench/app:latest"

total_bytes=$(du -sb "$bp" | cut -f1)
mb() { python3 -c "print(f'{$1/1e6:.1f}')"; }
log_lines() { wc -l < "$reg_log"; }
blob_bytes() { find "$work/registry" -path '*/blobs/sha256/*' -name data -printf '%s\n' 2>/dev/null | awk '{s+=$1} END {print s+0}'; }
# count FROM METHOD PATH_PART : access-log requests after line FROM.
count() { tail -n +"$(($1 + 1))" "$reg_log" | grep -c "\"$2 [^\"]*$3" || true; }
# get_bytes FROM : response bytes of blob GETs after line FROM (combined log: status size).
get_bytes() { tail -n +"$(($1 + 1))" "$reg_log" | grep "\"GET [^\"]*/blobs/sha256:" | awk '{for(i=1;i<=NF;i++) if ($i ~ /HTTP\/1/) {print $(i+2); break}}' | awk '{s+=$1} END {print s+0}'; }

# 1. Fresh export.
printf '[run-image]\nreference = "%s/run@%s"\nimage = "%s/run:latest"\n' "$host" "$run_digest" "$host" > "$layers/analyzed.toml"
read -r fresh_s fresh_kib < <(timed "$bindir/exporter" -app "$app" -layers "$layers" -launcher "$launcher" "$image")
fresh_digest=$(digest_of "$image")

# 2. No-op export on the same layers dir: the analyzer writes analyzed.toml with the image just pushed as previous
# image ([image] reference and [metadata] from its lifecycle label); same layers, same app.
rm -f "$layers/analyzed.toml"
timed "$bindir/analyzer" -layers "$layers" -run-image "$host/run:latest" "$image" >/dev/null
grep -q '^\[image\]' "$layers/analyzed.toml" || { echo "analyzer found no previous image" >&2; cat "$layers/analyzed.toml" >&2; exit 1; }
from=$(log_lines); bytes_before=$(blob_bytes)
read -r noop_s noop_kib < <(timed "$bindir/exporter" -app "$app" -layers "$layers" -launcher "$launcher" "$image")
noop_puts=$(count "$from" PUT /blobs/uploads/)
noop_patches=$(count "$from" PATCH /blobs/uploads/)
noop_new_bytes=$(( $(blob_bytes) - bytes_before ))
noop_digest=$(digest_of "$image")

# 3. The platform's no-op rebuild: the layers are cache=true too; a fresh export with a volume
# cache; then a new layers dir, the analyzer, the restorer extracting every layer from the
# cache, the buildpack's layer metadata written again (as the builder would), and a no-op
# export with the cache.
for n in 1 2 3 4; do printf '[types]\nlaunch = true\ncache = true\n' > "$bp/layer$n.toml"; done
cached_image="$host/bench/app-cached:latest"
mkdir -p "$work/cache"
printf '[run-image]\nreference = "%s/run@%s"\nimage = "%s/run:latest"\n' "$host" "$run_digest" "$host" > "$layers/analyzed.toml"
read -r cfresh_s cfresh_kib < <(timed "$bindir/exporter" -app "$app" -layers "$layers" -launcher "$launcher" -cache-dir "$work/cache" "$cached_image")
cfresh_digest=$(digest_of "$cached_image")
# Cached tars hold absolute paths: the new layers dir is at the same path, as on a platform.
old_layers="$work/layers-first"; mv "$layers" "$old_layers"; bp="$old_layers/bench_bp"
layers2="$layers"; mkdir -p "$layers2/config"
cp "$old_layers/group.toml" "$layers2/"; cp "$old_layers/config/metadata.toml" "$layers2/config/"
timed "$bindir/analyzer" -layers "$layers2" -run-image "$host/run:latest" "$cached_image" >/dev/null
read -r restore_s restore_kib < <(timed "$bindir/restorer" -layers "$layers2" -cache-dir "$work/cache")
for n in 1 2 3 4; do cp "$bp/layer$n.toml" "$layers2/bench_bp/layer$n.toml"; done
cmp -s "$bp/layer1/random-0.bin" "$layers2/bench_bp/layer1/random-0.bin" || { echo "restorer did not restore layer1" >&2; cat "$work/cmd.log" "$layers2/analyzed.toml" >&2; ls -la "$work/cache/committed" "$layers2/bench_bp" >&2; exit 1; }
from=$(log_lines); bytes_before=$(blob_bytes)
read -r cnoop_s cnoop_kib < <(timed "$bindir/exporter" -app "$app" -layers "$layers2" -launcher "$launcher" -cache-dir "$work/cache" "$cached_image")
cnoop_puts=$(count "$from" PUT /blobs/uploads/)
cnoop_new_bytes=$(( $(blob_bytes) - bytes_before ))
cnoop_digest=$(digest_of "$cached_image")
grep -c "Reusing cache layer" "$work/cmd.log" > "$work/cache-reused" || true

# 4. Rebase onto run2 (-force: run2 is not the run image or a mirror of it, which the rebaser
# otherwise refuses, as the reference does).
from=$(log_lines); bytes_before=$(blob_bytes)
read -r rebase_s _ < <(timed "$bindir/rebaser" -force -run-image "$host/run2:latest" "$image")
sleep 0.2 # let the access log catch up
rebase_reqs=$(( $(log_lines) - from ))
rebase_puts=$(count "$from" PUT /blobs/uploads/)
rebase_patches=$(count "$from" PATCH /blobs/uploads/)
rebase_gets=$(count "$from" GET /blobs/sha256:)
rebase_get_bytes=$(get_bytes "$from")
rebase_new_bytes=$(( $(blob_bytes) - bytes_before ))
rebased_digest=$(digest_of "$image")

pct() { python3 -c "print(f'{100*$1/$2:.1f}%')"; }
echo
echo "layer data: $(mb "$total_bytes") MB in 4 layers ($(nproc) cores)"
printf '%-30s %8s %12s\n' "" "seconds" "peak MiB"
printf '%-30s %8s %12s\n' "fresh export -> registry" "$fresh_s" "$((fresh_kib / 1024))"
printf '%-30s %8s %12s\n' "no-op export -> registry" "$noop_s" "$((noop_kib / 1024))"
echo "no-op / fresh: $(pct "$noop_s" "$fresh_s") (target < 10%)"
echo "no-op uploads: $noop_puts blob upload PUTs, $noop_patches PATCHes, $noop_new_bytes new blob bytes in the registry (target: no layer)"
echo "no-op image digest unchanged: $([ "$noop_digest" = "$fresh_digest" ] && echo yes || echo "no ($fresh_digest -> $noop_digest)")"
echo
echo "platform rebuild (layers restored from a volume cache into a new layers dir):"
printf '%-30s %8s %12s\n' "fresh export + cache" "$cfresh_s" "$((cfresh_kib / 1024))"
printf '%-30s %8s %12s\n' "restore (not export time)" "$restore_s" "$((restore_kib / 1024))"
printf '%-30s %8s %12s\n' "no-op export + cache" "$cnoop_s" "$((cnoop_kib / 1024))"
echo "no-op / fresh: $(pct "$cnoop_s" "$cfresh_s") (target < 10%); cache layers reused: $(cat "$work/cache-reused") of 4"
echo "no-op uploads: $cnoop_puts blob upload PUTs, $cnoop_new_bytes new blob bytes; digest unchanged: $([ "$cnoop_digest" = "$cfresh_digest" ] && echo yes || echo "no ($cfresh_digest -> $cnoop_digest)")"
echo
echo "rebase: ${rebase_s}s (target < 1 s), $rebase_reqs registry requests, $rebase_puts blob upload PUTs, $rebase_patches PATCHes, $rebase_new_bytes new blob bytes, $rebase_gets blob GETs ($rebase_get_bytes bytes)"
echo "rebased image: $noop_digest -> $rebased_digest"
