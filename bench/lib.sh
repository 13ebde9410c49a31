# Shared setup for the benchmarks (sourced by export-bench.sh and rebuild-bench.sh; not run on
# its own). Expects `repo` (the repository root) and `work` (a scratch dir) to be set.

bench_target=x86_64-unknown-linux-gnu

# bench_build PKG... : the static release builds the quick start and the release instructions
# use, plus the launcher in its own profile. Sets `launcher` and `bindir`.
bench_build() {
  local p pkgs=()
  for p in "$@"; do pkgs+=(-p "$p"); done
  echo "building release binaries..." >&2
  (cd "$repo" && RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release --target "$bench_target" "${pkgs[@]}" \
    && RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --profile launcher --target "$bench_target" -p launcher)
  bindir="$repo/target/$bench_target/release"
  launcher="$repo/target/$bench_target/launcher/launcher"
}

# bench_layers SIZE_MIB [DATA] : SIZE_MIB of layer data in four launch layers of buildpack
# bench/bp, group.toml, config/metadata.toml and a one-file app. DATA is `mixed` (the default:
# half compressible text, half random) or `text` (all text, where the codec's speed matters
# most). Sets `layers`, `bp` and `app`.
bench_layers() {
  local size_mib=$1 data=${2:-mixed} per_layer
  case $data in mixed|text) ;; *) echo "bench_layers: DATA is mixed or text, not $data" >&2; return 2;; esac
  layers="$work/layers"; bp="$layers/bench_bp"; app="$work/app"
  mkdir -p "$bp" "$app" "$layers/config"
  per_layer=$((size_mib / 4))
  echo "generating ${size_mib} MiB in 4 layers..." >&2
  python3 - "$bp" "$per_layer" "$data" <<'PY'
import os, random, sys
root, mib, data = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(42)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10))) for _ in range(2000)]
def text(path, size):
    with open(path, "w") as out:
        written = 0
        while written < size:
            line = " ".join(rng.choice(words) for _ in range(12)) + "\n"
            out.write(line); written += len(line)
for n in range(1, 5):
    layer = os.path.join(root, f"layer{n}")
    os.makedirs(layer, exist_ok=True)
    half = mib * 1024 * 1024 // 2
    files = 8
    for f in range(files):
        text(os.path.join(layer, f"text-{f}.txt"), half // files)
        if data == "text":
            text(os.path.join(layer, f"text2-{f}.txt"), half // files)
        else:
            with open(os.path.join(layer, f"random-{f}.bin"), "wb") as out:
                out.write(os.urandom(half // files))
    with open(os.path.join(root, f"layer{n}.toml"), "w") as t:
        t.write("[types]\nlaunch = true\n")
PY
  printf '[[group]]\nid = "bench/bp"\nversion = "1"\napi = "0.12"\n' > "$layers/group.toml"
  printf '[[processes]]\ntype = "web"\ncommand = ["true"]\nargs = []\ndirect = true\nbuildpack-id = "bench/bp"\n' > "$layers/config/metadata.toml"
  echo "hello" > "$app/file"
}

# bench_run_image : the example run image as an OCI layout at $work/layout/example.com/run/latest.
bench_run_image() {
  bash "$repo/examples/run-image/build.sh" "$work/layout/example.com/run/latest" >/dev/null
}

# bench_registry ACCESSLOG : a local Distribution registry (fresh storage, plain HTTP on
# loopback), its access log on when ACCESSLOG is "on". Sets `port`, `reg_pid` and `reg_log`.
bench_registry() {
  local disabled=true
  [ "${1:-off}" = on ] && disabled=false
  port=$(python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])")
  reg_log="$work/registry.log"
  cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: $disabled}}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
YML
  docker-registry serve "$work/registry.yml" >"$reg_log" 2>&1 & reg_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
}

# timed CMD... : runs CMD (output to $work/cmd.log, shown on failure) and prints
# "seconds peak_kib".
timed() {
  /usr/bin/time -f "%e %M" -o "$work/time.out" "$@" >"$work/cmd.log" 2>&1 || { cat "$work/cmd.log" >&2; exit 1; }
  cat "$work/time.out"
}
