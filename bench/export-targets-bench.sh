#!/usr/bin/env bash
# Export targets benchmark (not a test): the SIZE_MIB app of export-bench.sh (four buildpack
# layers, half text, half random) exported with our `exporter`, in one run, into a private
# dockerd (`-daemon -launch-cache`), to a local Distribution registry and to an OCI layout:
# a fresh export to each, then a no-op re-export (the analyzer run first, untimed, so the
# previous image is the one just exported, as in a rebuild).
#
#   bash bench/export-targets-bench.sh [SIZE_MIB]      (default 1024)
#
# Prints seconds and peak memory (GNU time) of each export. Needs root, docker.io,
# docker-registry, skopeo, GNU time and a Rust toolchain.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
size_mib=${1:-1024}
work=$(mktemp -d /tmp/cetb.XXXXXX)
reg_pid=
dpid=
cleanup() {
  [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null
  if [ -n "$dpid" ]; then kill "$dpid" 2>/dev/null || true; for _ in $(seq 200); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done; fi
  rm -rf "$work"
}
trap cleanup EXIT

. "$repo/bench/lib.sh"
bench_build exporter analyzer
bench_layers "$size_mib"
bench_run_image
export CNB_PLATFORM_API=0.15
run_layout="$work/layout/example.com/run/latest"

# A private dockerd holding the run image.
dockerd --data-root "$work/root" --exec-root "$work/x" -H "unix://$work/d.sock" --pidfile "$work/pid" \
  --iptables=false --bridge=none >"$work/dockerd.log" 2>&1 & dpid=$!
export DOCKER_HOST="unix://$work/d.sock"
for _ in $(seq 300); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
skopeo copy -q "oci:$run_layout:latest" "docker-archive:$work/run.tar:example.com/run:latest"
docker load -q -i "$work/run.tar" >/dev/null
rm -f "$work/run.tar"

# The registry holding the run image.
bench_registry off
skopeo copy -q --dest-tls-verify=false "oci:$run_layout:latest" "docker://127.0.0.1:$port/run:latest"

common=(-app "$app" -layers "$layers" -launcher "$launcher")
analyze() { "$bindir/analyzer" -layers "$layers" "$@" >/dev/null; }
mkdir -p "$work/launch-cache"
sync

# Daemon.
analyze -daemon -launch-cache "$work/launch-cache" -run-image example.com/run:latest example.com/bench/app:latest
read -r d_s d_kib < <(timed "$bindir/exporter" "${common[@]}" -daemon -launch-cache "$work/launch-cache" example.com/bench/app:latest)
analyze -daemon -launch-cache "$work/launch-cache" -run-image example.com/run:latest example.com/bench/app:latest
read -r d2_s d2_kib < <(timed "$bindir/exporter" "${common[@]}" -daemon -launch-cache "$work/launch-cache" example.com/bench/app:latest)

# Registry (plain HTTP on loopback).
reg_app="127.0.0.1:$port/bench/app:latest"
analyze -run-image "127.0.0.1:$port/run:latest" "$reg_app"
read -r r_s r_kib < <(timed "$bindir/exporter" "${common[@]}" "$reg_app")
analyze -run-image "127.0.0.1:$port/run:latest" "$reg_app"
read -r r2_s r2_kib < <(timed "$bindir/exporter" "${common[@]}" "$reg_app")

# OCI layout.
lay=(-layout -layout-dir "$work/layout")
export CNB_EXPERIMENTAL_MODE=quiet
analyze "${lay[@]}" -run-image example.com/run:latest example.com/bench/app:latest
read -r l_s l_kib < <(timed "$bindir/exporter" "${common[@]}" "${lay[@]}" example.com/bench/app:latest)
analyze "${lay[@]}" -run-image example.com/run:latest example.com/bench/app:latest
read -r l2_s l2_kib < <(timed "$bindir/exporter" "${common[@]}" "${lay[@]}" example.com/bench/app:latest)

total_bytes=$(du -sb "$bp" | cut -f1)
echo
echo "layer data: $(python3 -c "print(f'{$total_bytes/1e6:.1f}')") MB in 4 layers ($(nproc) cores); dockerd $(docker version -f '{{.Server.Version}}')"
printf '%-30s %14s %14s %16s %16s\n' "target" "fresh s" "fresh MiB" "no-op s" "no-op MiB"
printf '%-30s %14s %14s %16s %16s\n' "daemon (-launch-cache)" "$d_s" "$((d_kib / 1024))" "$d2_s" "$((d2_kib / 1024))"
printf '%-30s %14s %14s %16s %16s\n' "registry (loopback)" "$r_s" "$((r_kib / 1024))" "$r2_s" "$((r2_kib / 1024))"
printf '%-30s %14s %14s %16s %16s\n' "OCI layout" "$l_s" "$((l_kib / 1024))" "$l2_s" "$((l2_kib / 1024))"
