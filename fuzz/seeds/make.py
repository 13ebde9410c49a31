#!/usr/bin/env python3
"""Writes the seeds for json_docs, image_ref and tar_extract: label JSON taken from the unit
tests of platform-api (every raw string literal that is a JSON object), a small OCI layout's
index, manifest and config (as umoci writes them), references from the crates' tests and the
spec, and small tars, including hostile ones (`..`, absolute and escaping symlinks, hard links
out of the root). Usage: fuzz/seeds/make.py <fuzz dir>; the output is committed."""
import hashlib, io, json, pathlib, re, sys, tarfile

fuzz = pathlib.Path(sys.argv[1]).resolve()
repo = fuzz.parent

def write(target, name, data):
    out = fuzz / "corpus" / target
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_bytes(data)

# json_docs: selectors 0-3 labels, 4 manifest (+hint byte), 5 config, 6 manifest+config, 7 index.
LABEL_TYPES = {"LayersMetadata": 0, "BuildMetadata": 1, "ProjectMetadata": 2, "CacheMetadata": 3}
n = 0
for src in ["platform-api/src/labels.rs", "platform-api/src/files/analyzed.rs"]:
    text = (repo / src).read_text()
    for m in re.finditer(r'r#"(\{.*?)"#', text, re.S):
        before = text[max(0, m.start() - 400):m.start()]
        kind = max(LABEL_TYPES, key=lambda k: before.rfind(k))
        if before.rfind(kind) < 0:
            kind = "LayersMetadata"
        n += 1
        write("json_docs", f"test-{n:02}-label{LABEL_TYPES[kind]}", bytes([LABEL_TYPES[kind]]) + m.group(1).encode())

config = json.dumps({"created": "1980-01-01T00:00:01Z", "architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/usr/bin:/bin", "CNB_APP_DIR=/workspace"], "Entrypoint": ["/cnb/lifecycle/launcher"],
               "Labels": {"io.buildpacks.base.id": "x", "io.buildpacks.rebasable": "true"}, "WorkingDir": "/workspace"},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64, "sha256:" + "b" * 64]},
    "history": [{"created": "1980-01-01T00:00:01Z", "created_by": "lifecycle"}, {"empty_layer": True}]},
    separators=(",", ":")).encode()
def desc(media, data, **extra):
    return {"mediaType": media, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data), **extra}
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": desc("application/vnd.oci.image.config.v1+json", config),
    "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", b"1"), desc("application/vnd.oci.image.layer.v1.tar+gzip", b"2")],
    "annotations": {"org.opencontainers.image.ref.name": "latest"}}, separators=(",", ":")).encode()
docker = (manifest.replace(b"application/vnd.oci.image.manifest.v1+json", b"application/vnd.docker.distribution.manifest.v2+json")
          .replace(b"application/vnd.oci.image.config.v1+json", b"application/vnd.docker.container.image.v1+json"))
index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    desc("application/vnd.oci.image.manifest.v1+json", manifest, platform={"os": "linux", "architecture": "amd64"},
         annotations={"org.opencontainers.image.ref.name": "latest"}),
    desc("application/vnd.oci.image.manifest.v1+json", docker, platform={"os": "linux", "architecture": "arm", "variant": "v7"})]},
    separators=(",", ":")).encode()
umoci_index = b'{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:40520a240cf65dd9f17135975c2a921b1457507692a636c1846ce3b4f6de19f9","size":192,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}'
write("json_docs", "manifest-oci", b"\x04\x00" + manifest)
write("json_docs", "manifest-docker", b"\x04\x03" + docker)
write("json_docs", "index-oci", b"\x04\x00" + index)
write("json_docs", "config", b"\x05" + config)
write("json_docs", "image", b"\x06" + len(manifest).to_bytes(2, "little") + manifest + config)
write("json_docs", "layout-index", b"\x07" + index)
write("json_docs", "layout-index-umoci", b"\x07" + umoci_index)

# image_ref
refs = ["busybox", "docker.io/library/busybox:latest", "localhost:5000/app", "127.0.0.1:5000/a/b/c:v1.2",
        "registry.example.com/org/app@sha256:" + "0" * 64, "gcr.io/p/run:bionic@sha256:" + "f" * 64,
        "[::1]:5000/x:y", "index.docker.io/cnbs/sample-stack-run:bionic", "my_reg.io/a-b/c.d_e:t-1"]
for i, r in enumerate(refs):
    write("image_ref", f"ref-{i:02}", r.encode())

# tar_extract: option byte (bit0 external symlinks, bit1 root /layers, bit2 gzip auto,
# bit3 wrong diffID; bit4 structured) then a raw tar.
def tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, arg in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 315532801
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                t.addfile(info)
            elif kind == "file":
                info.size, info.mode = len(arg), 0o644
                t.addfile(info, io.BytesIO(arg))
            else:
                info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
                info.linkname = arg
                t.addfile(info)
    return buf.getvalue()
tars = {
    "layer": [("/layers", "dir", None), ("/layers/bp", "dir", None), ("/layers/bp/l", "dir", None),
              ("/layers/bp/l/f", "file", b"data\n"), ("/layers/bp/l/s", "sym", "f"), ("/layers/bp/l/h", "hard", "/layers/bp/l/f")],
    "dotdot": [("/layers/../etc/x", "file", b"x")],
    "symlink-out": [("/layers/s", "sym", "/etc"), ("/layers/s/x", "file", b"x")],
    "symlink-rel-out": [("/layers/a", "sym", "../../.."), ("/layers/a/x", "file", b"x")],
    "through-planted": [("/layers/escape/x", "file", b"x"), ("/layers/up/x", "file", b"x")],
    "hard-out": [("/layers/h", "hard", "/etc/passwd")],
    "replace-dir-by-link": [("/layers/d", "dir", None), ("/layers/d", "sym", "/tmp"), ("/layers/d/x", "file", b"x")],
    "long-name": [("/layers/" + "n" * 200, "file", b"x")],
}
for i, (name, entries) in enumerate(tars.items()):
    write("tar_extract", f"tar-{name}", bytes([i & 0x0f]) + tar(entries))
# Structured mode (bit 4): bytes the harness decodes into entries.
write("tar_extract", "structured-1", b"\x12" + bytes(range(64)))
write("tar_extract", "structured-2", b"\x10" + bytes(range(255, 191, -1)))
print("ok")
