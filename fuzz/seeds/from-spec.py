#!/usr/bin/env python3
"""Writes seed inputs for the toml_files and json_docs targets from the ```toml and
```javascript examples of the spec (buildpacks/spec: platform.md, buildpack.md,
image_extension.md), prefixed with the selector byte each target expects.

Usage: fuzz/seeds/from-spec.py <spec dir> <fuzz dir>. The output is committed under
fuzz/corpus/, so this only needs running again when the spec examples change."""
import pathlib, re, sys

spec, fuzz = map(pathlib.Path, sys.argv[1:3])
# Selector order of fuzz_targets/toml_files.rs (FILES) and json_docs.rs (DOCS).
TOML = ["order.toml", "group.toml", "plan.toml", "detect-plan.toml", "buildpack-plan.toml",
        "buildpack.toml", "extension.toml", "launch.toml", "layer.toml", "store.toml",
        "build.toml", "analyzed.toml", "project-metadata.toml", "run.toml", "stack.toml",
        "report.toml", "metadata.toml", "system.toml", "exec.d output"]
HEADINGS = {"Build Plan": "detect-plan.toml", "Buildpack Plan": "buildpack-plan.toml",
            "Layer Content Metadata": "layer.toml"}
LABELS = {"io.buildpacks.lifecycle.metadata": 0, "io.buildpacks.build.metadata": 1,
          "io.buildpacks.project.metadata": 2}

def blocks(text, lang):
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "```" + lang:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            yield lines[:i], "\n".join(lines[i + 1:end]) + "\n"

def write(target, name, data):
    out = fuzz / "corpus" / target
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_bytes(data)

n = 0
for md in ("platform.md", "buildpack.md", "image_extension.md"):
    text = (spec / md).read_text()
    for before, body in blocks(text, "toml"):
        heading = next(l for l in reversed(before) if l.startswith("#"))
        name = next((v for k, v in HEADINGS.items() if k in heading), None)
        if name is None:
            m = re.search(r"([a-z-]+\.toml)", heading)
            name = m.group(1) if m else None
        if name not in TOML:
            continue
        n += 1
        write("toml_files", f"spec-{n:02}-{name}", bytes([TOML.index(name)]) + body.encode())
    for before, body in blocks(text, "javascript"):
        heading = next(l for l in reversed(before) if l.startswith("#"))
        label = next((v for k, v in LABELS.items() if k in heading), None)
        if label is None:
            continue
        # The spec's schemas use `<placeholders>` and comments: keep only the JSON-ish text.
        body = re.sub(r"//.*", "", body)
        n += 1
        write("json_docs", f"spec-{n:02}-label{label}", bytes([label]) + body.encode())
print(f"{n} seeds")
