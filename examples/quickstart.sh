#!/usr/bin/env bash
# Quick start: build the lifecycle, a tiny run image and the sample app into an OCI layout,
# then run the app image's entrypoint in a container-free sandbox.
#
#   bash examples/quickstart.sh [work-dir]
#
# Needs a Rust toolchain and, from Debian: umoci busybox-static bubblewrap skopeo
# (installed when missing and running as root).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d /tmp/cnb-quickstart.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)

need=()
for pair in umoci:umoci bwrap:bubblewrap skopeo:skopeo; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
[ -x /bin/busybox ] || need+=(busybox-static)
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  else
    echo "quickstart: please install: ${need[*]}" >&2; exit 1
  fi
fi

echo "==> building the lifecycle (static release binaries)"
target=x86_64-unknown-linux-gnu
(cd "$repo" && RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release --target "$target" \
   -p creator -p analyzer -p detector -p builder -p exporter \
 && RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --profile launcher --target "$target" -p launcher)
bin="$repo/target/$target/release"
launcher="$repo/target/$target/launcher/launcher"

echo "==> building the run image example.com/cnb/run:latest into $work/layout"
layout="$work/layout"
bash "$repo/examples/run-image/build.sh" "$layout/example.com/cnb/run/latest" >/dev/null

echo "==> building the sample app with creator"
rm -rf "$work/layers" "$work/app" "$work/platform"
mkdir -p "$work/layers" "$work/platform"
cp -r "$repo/examples/app" "$work/app"
uid=1000 gid=1000
if [ "$(id -u)" = 0 ]; then
  chown -R "$uid:$gid" "$work/layers" "$work/app" "$work/platform" "$layout"
else
  uid=$(id -u) gid=$(id -g)
fi
CNB_PLATFORM_API=0.15 CNB_EXPERIMENTAL_MODE=quiet "$bin/creator" \
  -layout -layout-dir "$layout" \
  -run-image example.com/cnb/run:latest \
  -app "$work/app" -layers "$work/layers" -platform "$work/platform" \
  -buildpacks "$repo/examples/buildpacks" -order "$repo/examples/order.toml" \
  -launcher "$launcher" -uid "$uid" -gid "$gid" \
  example.com/demo/hello:latest

image="$layout/example.com/demo/hello/latest"
echo
echo "==> the app image is the OCI layout $image"
skopeo inspect "oci:$image:latest" | sed -n '/"Digest"/p;/"Layers"/,/]/p'

echo "==> running it: unpack with umoci, start the entrypoint in a bubblewrap sandbox"
rm -rf "$work/bundle"
umoci unpack --rootless --image "$image:latest" "$work/bundle" >/dev/null 2>&1 \
  || umoci unpack --image "$image:latest" "$work/bundle" >/dev/null
bwrap --bind "$work/bundle/rootfs" / --proc /proc --dev /dev --unshare-all \
  --uid "$uid" --gid "$gid" --chdir "$work/app" \
  --setenv CNB_PLATFORM_API 0.15 --setenv CNB_LAYERS_DIR "$work/layers" --setenv CNB_APP_DIR "$work/app" \
  --setenv PATH /cnb/process:/cnb/lifecycle:/bin \
  /cnb/process/web

cat <<MSG

Inspect:  skopeo inspect --config oci:$image:latest
Unpack:   umoci unpack --image $image:latest <dir>
Push:     skopeo copy oci:$image:latest docker://<registry>/<repo>:<tag>
MSG
