#!/usr/bin/env bash
# Docker daemon load benchmark (not a test): the same SIZE_MIB app layout as export-bench.sh
# (four buildpack layers, half text, half random) loaded into a private dockerd on top of a
# busybox base, through our client (docker-archive streamed into POST /images/load, base layer
# omitted), beside `docker load -i` of the same archive written to a file first.
#
#   bash bench/daemon-load-bench.sh [SIZE_MIB]      (default 1024)
#
# Prints seconds, MB/s and peak memory of our process. Needs root, docker.io, busybox-static,
# GNU time. The daemon does the unpacking in both cases; `docker load`'s time excludes writing
# the archive file (shown separately).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
size_mib=${1:-1024}
work=$(mktemp -d /tmp/cdb.XXXXXX)
dpid=
cleanup() {
  if [ -n "$dpid" ]; then kill "$dpid" 2>/dev/null || true; for _ in $(seq 200); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done; fi
  rm -rf "$work"
}
trap cleanup EXIT

. "$repo/bench/lib.sh"
echo "building the example..." >&2
(cd "$repo" && cargo build -q --release -p cnb-daemon --example daemon-load)
# .cargo/config.toml builds for the host triple explicitly (static binaries by default).
host=$(rustc -vV | sed -n 's/^host: //p')
load_bin="$repo/target/$host/release/examples/daemon-load"
bench_layers "$size_mib"

dockerd --data-root "$work/root" --exec-root "$work/x" -H "unix://$work/d.sock" --pidfile "$work/pid" \
  --iptables=false --bridge=none >"$work/dockerd.log" 2>&1 & dpid=$!
export DOCKER_HOST="unix://$work/d.sock"
for _ in $(seq 300); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
mkdir -p "$work/rootfs/bin" && cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
tar -C "$work/rootfs" -cf - . | docker import - base:1 >/dev/null

total_bytes=$(du -sb "$bp" | cut -f1)
mb() { python3 -c "print(f'{$1/1e6:.1f}')"; }
rate() { python3 -c "print(f'{$total_bytes/1e6/$1:.0f}')"; }
sync

read -r ours_s ours_kib < <(timed "$load_bin" --base base:1 --tag app:1 "$bp"/layer1 "$bp"/layer2 "$bp"/layer3 "$bp"/layer4)
sent=$(grep -o '^[0-9]*' "$work/cmd.log")
docker rmi -f app:1 >/dev/null
docker builder prune -af >/dev/null 2>&1 || true

read -r arch_s arch_kib < <(timed "$load_bin" --base base:1 --tag app:1 --archive "$work/app.tar" "$bp"/layer1 "$bp"/layer2 "$bp"/layer3 "$bp"/layer4)
read -r cli_s cli_kib < <(timed docker load -q -i "$work/app.tar")

echo
echo "layer data: $(mb "$total_bytes") MB in 4 layers; archive sent: $(mb "$sent") MB"
printf '%-44s %8s s %6s MB/s  peak %s MiB\n' \
  "ours: stream into POST /images/load" "$ours_s" "$(rate "$ours_s")" "$((ours_kib / 1024))" \
  "ours: write the same archive to a file" "$arch_s" "$(rate "$arch_s")" "$((arch_kib / 1024))" \
  "docker load -i of that file" "$cli_s" "$(rate "$cli_s")" "$((cli_kib / 1024))"
