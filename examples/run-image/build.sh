#!/usr/bin/env bash
# Builds a tiny run image as an OCI image layout, from Debian's busybox-static, with the
# io.buildpacks.base.* labels and a non-root `cnb` user (uid 1000, gid 1000).
#
#   examples/run-image/build.sh <layout-path> [tag]
#
# <layout-path> is the directory of one image, e.g. <layout-dir>/example.com/cnb/run/latest
# for the reference example.com/cnb/run:latest in -layout mode. Needs umoci and busybox-static
# (apt-get install umoci busybox-static).
set -euo pipefail
out=${1:?usage: build.sh <layout-path> [tag]}
tag=${2:-latest}
for tool in umoci; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool is not installed (apt-get install umoci busybox-static)" >&2; exit 1; }
done
busybox=/bin/busybox
[ -x "$busybox" ] && "$busybox" --list >/dev/null 2>&1 || { echo "build.sh: need a static busybox at $busybox (apt-get install busybox-static)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,etc,tmp,home/cnb,workspace}
cp "$busybox" "$rootfs/bin/busybox"
for applet in sh ls cat echo env id uname mkdir printf sleep test; do
  ln -s busybox "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000:cnb:/home/cnb:/bin/sh\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\ncnb:x:1000:\n' > "$rootfs/etc/group"
printf 'ID=busybox\nVERSION_ID=1.35\n' > "$rootfs/etc/os-release"
chmod 1777 "$rootfs/tmp"
chown -R 1000:1000 "$rootfs/home/cnb" "$rootfs/workspace"

rm -rf "$out"
mkdir -p "$(dirname "$out")"
umoci init --layout "$out"
umoci new --image "$out:$tag"
if [ "$(id -u)" = 0 ]; then
  umoci insert --image "$out:$tag" "$rootfs" /
else
  umoci insert --rootless --image "$out:$tag" "$rootfs" /
fi
umoci config --image "$out:$tag" \
  --os linux --architecture amd64 \
  --config.user 1000:1000 \
  --config.env PATH=/bin \
  --config.workingdir / \
  --config.label io.buildpacks.base.id=examples.busybox \
  --config.label io.buildpacks.base.distro.name=busybox \
  --config.label io.buildpacks.base.distro.version=1.35 \
  --config.label io.buildpacks.stack.id=examples.busybox \
  --config.label io.buildpacks.base.maintainer=examples \
  --history.created_by "examples/run-image/build.sh"
umoci gc --layout "$out"
chmod -R a+rX "$out"
echo "run image written to $out ($tag)"
