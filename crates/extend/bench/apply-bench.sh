#!/usr/bin/env bash
# Benchmark (not a test): a RUN writing 100 MB (100 files of 1 MiB, incompressible) on a
# busybox root of about 30,000 files, applied by cnb-extend (chroot, snapshot, gzip layer)
# and by `docker build` (legacy builder) on a dockerd this script starts, from the same base;
# then the cached re-run of cnb-extend (a fresh copy of the base, the first run's replay
# cache: nothing executes, the layer is replayed) as a fraction of the first run.
# Usage: bash crates/extend/bench/apply-bench.sh   (as root, from the workspace)
set -euo pipefail
work=$(mktemp -d /tmp/extend-bench.XXXX)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; sleep 3; rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev,src,usr/share/bench} "$work/ctx" "$work/layers"
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
for d in $(seq 1 300); do
  mkdir -p "$root/usr/share/bench/$d"
  for f in $(seq 1 100); do echo "$d $f" > "$root/usr/share/bench/$d/$f"; done
done
head -c 104857600 /dev/urandom > "$root/src/random"
cat > "$work/ctx/Dockerfile" <<'DF'
ARG base_image
FROM ${base_image}
RUN mkdir /out && for i in $(seq 0 99); do dd if=/src/random of=/out/part-$i bs=1048576 skip=$i count=1 2>&1 | grep -v records || true; done
DF
echo "files in the base: $(find "$root" | wc -l)"
# The engine and the layer writer optimised, as in a release build (the dev profile already
# optimises zlib-rs, flate2 and sha2).
cargo build -q -p cnb-extend --example apply-bench \
  --config 'profile.dev.package.cnb-extend.opt-level=3' --config 'profile.dev.package.cnb-layers.opt-level=3'
bin=$(ls -t target/*/debug/examples/apply-bench target/debug/examples/apply-bench 2>/dev/null | head -1 || true)
( tar -C "$root" --numeric-owner -cf "$work/base.tar" . )
# Each run starts from a fresh copy of the base, as a new extender container would; the
# cached re-run shares the first run's cache directory.
for run in first cached; do
  cp -a "$root" "$work/run"
  mkdir -p "$work/layers-$run"
  /usr/bin/time -o "$work/$run.time" -f "%e" \
    "$bin" "$work/run" "$work/ctx" "$work/ctx/Dockerfile" "$work/layers-$run" "$work/cache" \
    > "$work/$run.out" 2> "$work/$run.log" || { cat "$work/$run.log"; exit 1; }
  grep '^layer' "$work/$run.out"
  grep -o 'instruction applied.*\|replay_ms.*' "$work/$run.log" || true
  echo "cnb-extend, $run run: $(cat "$work/$run.time") s wall"
  rm -rf "$work/run"
done
awk -v a="$(cat "$work/first.time")" -v b="$(cat "$work/cached.time")" \
  'BEGIN { printf "cached re-run: %.1f %% of the first\n", 100 * b / a }'
rm -rf "$work"/layers-*
dockerd --data-root "$work/d/root" --exec-root "$work/d/exec" -H "unix://$work/docker.sock" \
  --pidfile "$work/pid" --iptables=false --bridge=none > "$work/dockerd.log" 2>&1 &
export DOCKER_HOST="unix://$work/docker.sock" DOCKER_BUILDKIT=0
for _ in $(seq 1 100); do docker version > /dev/null 2>&1 && break; sleep 0.3; done
docker import "$work/base.tar" bench > /dev/null
/usr/bin/time -o "$work/docker.time" -f "%e" \
  docker build -q --network=none --build-arg base_image=bench "$work/ctx" > /dev/null
echo "docker build: $(cat "$work/docker.time") s wall"
/usr/bin/time -o "$work/docker-cached.time" -f "%e" \
  docker build -q --network=none --build-arg base_image=bench "$work/ctx" > /dev/null
echo "docker build, cached re-run: $(cat "$work/docker-cached.time") s wall"
awk -v a="$(cat "$work/first.time")" -v b="$(cat "$work/docker.time")" \
  'BEGIN { printf "cnb-extend first run: %.2fx the time of docker build\n", a / b }'
