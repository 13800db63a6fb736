#!/usr/bin/env bash
# Build the serving image and prove it works: ready time, a real classification from outside the
# container, non-root, no PyTorch, no network needed, clean SIGTERM, and the size the project adds.
#
#   bash deploy/verify.sh [--rm-base] [--keep-cache] [--keep-image] [--photo PATH] [-- BUILD_ARGS...]
#   e.g. bash deploy/verify.sh -- MODEL=resnet18 WEIGHTS=resnet18-f37072fd.pth
#
# Needs root with buildah + podman + runc (and debootstrap, the first time, to make the base image).
# It removes what it made: containers, the image and the build's intermediate layers.
# --rm-base     also delete the local base image (default: keep it, it takes ~1 min to make)
# --keep-cache  keep the intermediate layers, so the next run rebuilds only what changed
# --keep-image  keep the built image (tagged $WANWU_IMAGE, default localhost/wanwu:verify)
# Environment: WANWU_BASE_IMAGE (default localhost/wanwu-base:bookworm-py311; built here if missing,
# set it to e.g. docker.io/library/python:3.11-slim where a registry is reachable), PIP_CERT (CA
# bundle handed to pip in the build as a secret; default: the system bundle), READY_GOAL_S (3),
# BUDGET_MB (180: the project layers), IMAGE_BUDGET_MB (298: the whole image, base included).
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE=${WANWU_BASE_IMAGE:-localhost/wanwu-base:bookworm-py311}
IMAGE=${WANWU_IMAGE:-localhost/wanwu:verify}
READY_GOAL_S=${READY_GOAL_S:-3}
BUDGET_MB=${BUDGET_MB:-180}
IMAGE_BUDGET_MB=${IMAGE_BUDGET_MB:-298}
PHOTO=../shared/data/photos/dog.jpg
RM_BASE=0 KEEP_IMAGE=0 KEEP_CACHE=0
BUILD_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rm-base) RM_BASE=1 ;;
    --keep-image) KEEP_IMAGE=1 ;;
    --keep-cache) KEEP_CACHE=1 ;;
    --photo) PHOTO=$2; shift ;;
    --) shift; BUILD_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "verify: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

T_START=$(date +%s.%N)
# crun and the default limits fail in some VMs; podman's healthcheck timers need systemd, so the
# image's HEALTHCHECK is run by hand below (podman healthcheck run) instead.
RUN=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --health-interval=disable)
TAG=$$-$RANDOM
C_MAIN=wanwu-verify-$TAG
C_OFFLINE=wanwu-verify-offline-$TAG
WORK=$(mktemp -d)
FAILED=0
BUILT=0

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }
ok() { printf '  ok    %s\n' "$*"; }
fail() { printf '  FAIL  %s\n' "$*" >&2; FAILED=1; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(date +%s.%N)"; }

cleanup() {
  podman rm -f -t 0 "$C_MAIN" "$C_OFFLINE" >/dev/null 2>&1 || true
  if [ "$KEEP_IMAGE" = 0 ] && [ "$BUILT" = 1 ]; then podman rmi -f "$IMAGE" >/dev/null 2>&1 || true; fi
  if [ "$KEEP_CACHE" = 0 ] && [ -f "$WORK/build.log" ]; then
    # this build's intermediate images (stage results and cached steps), newest first
    base_id=$(podman image inspect -f '{{.Id}}' "$BASE_IMAGE" 2>/dev/null | cut -c1-11)
    ids=$(grep -oE '^(--> |Using cache )[0-9a-f]{11}' "$WORK/build.log" | awk '{print $NF}' | grep -v "^${base_id:-none}" | tac)
    for _ in 1 2; do
      for id in $ids; do   # never a tagged image (the base, a kept image, anything of anyone else's)
        [ "$(podman image inspect -f '{{len .RepoTags}}' "$id" 2>/dev/null)" = 0 ] && podman rmi "$id" >/dev/null 2>&1 || true
      done
    done
  fi
  if [ "$RM_BASE" = 1 ]; then podman rmi -f "$BASE_IMAGE" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in buildah podman curl python3; do
  command -v "$tool" >/dev/null || { echo "verify: $tool is required" >&2; exit 1; }
done

# --- 1. base image ---------------------------------------------------------------------------
log "base image $BASE_IMAGE"
T=$(date +%s.%N)
if podman image exists "$BASE_IMAGE"; then
  ok "cached"
elif [[ "$BASE_IMAGE" == localhost/* ]]; then
  bash deploy/base-image.sh "$BASE_IMAGE"
  ok "built in $(elapsed "$T") s"
else
  podman pull -q "$BASE_IMAGE" >/dev/null
  ok "pulled in $(elapsed "$T") s"
fi

# --- 2. build -----------------------------------------------------------------------------------
log "build $IMAGE"
# The CPU build of torch for the build stage: a local wheel in .whl/ (gitignored) when pip can get it
# here (a local wheelhouse or PyPI mirror); otherwise the Dockerfile uses the PyTorch CPU index.
if ! ls .whl/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then
  mkdir -p .whl
  python3 -m pip download -q --no-deps --only-binary :all: -d .whl "torch==2.13.0" 2>/dev/null \
    || echo "  (no local torch wheel; the build stage will use the PyTorch CPU index)"
  rm -f .whl/torch-2.13.0-*.whl   # never a non-CPU build
fi
SECRET=()
CA=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$CA" ] && SECRET=(--secret "id=pip_cert,src=$CA")
BARGS=()
for a in "${BUILD_ARGS[@]}"; do BARGS+=(--build-arg "$a"); done
T=$(date +%s.%N)
if ! buildah bud --isolation chroot --format docker --layers --force-rm \
    --ignorefile deploy/Dockerfile.dockerignore "${SECRET[@]}" \
    --build-arg "BASE=$BASE_IMAGE" "${BARGS[@]}" \
    -f deploy/Dockerfile -t "$IMAGE" . >"$WORK/build.log" 2>&1; then
  tail -n 40 "$WORK/build.log" >&2
  echo "verify: build failed (full log above, last 40 lines)" >&2
  exit 1
fi
BUILT=1
BUILD_S=$(elapsed "$T")
grep -E '^(warmup|slim-venv):' "$WORK/build.log" | sed 's/^/  /'
ok "built in $BUILD_S s"

# --- 3. run and time readiness ----------------------------------------------------------------
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log "run on 127.0.0.1:$PORT"
T=$(date +%s.%N)
podman run -d --name "$C_MAIN" "${RUN[@]}" --network=host --read-only --tmpfs /tmp \
  -e WANWU_HOST=127.0.0.1 -e "WANWU_PORT=$PORT" "$IMAGE" >/dev/null 2>"$WORK/podman.err" || { cat "$WORK/podman.err" >&2; exit 1; }
READY_S=
for _ in $(seq 1 1200); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz")" = 200 ]; then
    READY_S=$(elapsed "$T"); break
  fi
  [ "$(podman inspect -f '{{.State.Running}}' "$C_MAIN")" = true ] || break
  sleep 0.05
done
if [ -z "$READY_S" ]; then
  podman logs "$C_MAIN" 2>&1 | tail -n 30 >&2
  fail "never became ready"; exit 1
fi
if python3 -c "import sys; sys.exit(float(sys.argv[1]) > float(sys.argv[2]))" "$READY_S" "$READY_GOAL_S"; then
  ok "ready ${READY_S} s after podman run (goal <= ${READY_GOAL_S} s)"
else
  fail "ready ${READY_S} s after podman run (goal <= ${READY_GOAL_S} s)"
fi
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && ok "/healthz 200" || fail "/healthz"

# --- 4. classify from outside ---------------------------------------------------------------------
if [ ! -f "$PHOTO" ]; then
  echo "  ($PHOTO not found: classifying a generated image instead)"
  PHOTO=$WORK/generated.bmp
  python3 - "$PHOTO" <<'PY'
import struct, sys
w, h = 256, 192
rows = b"".join(bytes(v for x in range(w) for v in ((x * 3) % 256, (y * 5) % 256, ((x + y) * 2) % 256)) for y in range(h))
pixels = rows  # bottom-up BGR rows; w*3 is a multiple of 4, so no padding
header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
open(sys.argv[1], "wb").write(header + info + pixels)
PY
fi
if curl -sS -F "image=@$PHOTO" "http://127.0.0.1:$PORT/v1/classify" -o "$WORK/classify.json"; then
  if TOP=$(python3 - "$WORK/classify.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = r["results"][0]["predictions"][0]
assert p["label"] and p["label_zh"] and 0 < p["score"] <= 1, p
print(f'{p["label"]} / {p["label_zh"]} ({p["score"]:.3f}); model {r["model"]}, weights {r["weights_sha256"][:12]}')
PY
  ); then ok "classify $(basename "$PHOTO"): $TOP"; else fail "classify: unexpected answer $(head -c 300 "$WORK/classify.json")"; fi
else
  fail "classify: request failed"
fi
# The offline API docs (pages and their local assets, no CDN) and the v2 protocol
DOCS_OK=1
for path in /docs /redoc /docs-assets/swagger-ui-bundle.js /docs-assets/redoc.standalone.js /openapi.json /v2/health/ready; do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT$path" || { fail "GET $path"; DOCS_OK=0; }
done
[ "$DOCS_OK" = 1 ] && ok "/docs, /redoc and their assets, /openapi.json, /v2/health/ready: 200"
# What --precision auto (the default) picked: with ENGINE=openvino the image carries an INT8 version to pick from
if AUTO=$(curl -sf "http://127.0.0.1:$PORT/v1/models" | python3 -c '
import json, sys
m = json.load(sys.stdin)["active"]
c = m.get("precision_choice") or {}
ms = ", ".join(f"{p} {v:.2f}" for p, v in c.get("ms_per_image", {}).items())
engine, precision, reason = m["engine"], m["precision"], c.get("reason", "explicit")
print(f"{engine} {precision}: {reason}" + (f" (ms/image: {ms})" if ms else ""))
'); then ok "precision $AUTO"; else fail "/v1/models: unexpected answer"; fi

# --- 5. non-root, no torch, no pip, healthcheck --------------------------------------------------
UID_=$(podman exec "$C_MAIN" id -u)
PID1_USER=$(podman top "$C_MAIN" huser user args 2>/dev/null | awk 'NR == 2 {print $1 "/" $2}')
[ "$UID_" != 0 ] && ok "runs as uid $UID_ (server process: host/container user $PID1_USER)" || fail "runs as root"
if podman exec "$C_MAIN" python -c "import importlib.util as u, sys; sys.exit(bool(u.find_spec('torch') or u.find_spec('pip')))"; then
  ok "no torch, no pip in the image"
else
  fail "torch or pip is installed in the runtime image"
fi
if podman exec "$C_MAIN" sh -c 'grep -qi torch /proc/1/maps'; then fail "the server process mapped a torch library"; else ok "server process loaded no torch library"; fi
RSS=$(podman exec "$C_MAIN" sh -c "awk '/VmRSS/ {print \$2}' /proc/1/status")
ok "server RSS after one request: $((RSS / 1024)) MiB"
if podman healthcheck run "$C_MAIN" >/dev/null 2>&1; then ok "HEALTHCHECK passes"; else fail "HEALTHCHECK (podman healthcheck run) failed"; fi

# --- 6. no network at run time -----------------------------------------------------------------
log "offline container (--network=none)"
T=$(date +%s.%N)
podman run -d --name "$C_OFFLINE" "${RUN[@]}" --network=none --read-only --tmpfs /tmp "$IMAGE" >/dev/null 2>"$WORK/podman.err" || { cat "$WORK/podman.err" >&2; exit 1; }
OFFLINE_S=
for _ in $(seq 1 300); do
  if podman exec "$C_OFFLINE" python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)" 2>/dev/null; then
    OFFLINE_S=$(elapsed "$T"); break
  fi
  [ "$(podman inspect -f '{{.State.Running}}' "$C_OFFLINE")" = true ] || break
  sleep 0.1
done
if [ -n "$OFFLINE_S" ]; then ok "ready without a network in $OFFLINE_S s (polled via podman exec)"; else podman logs "$C_OFFLINE" 2>&1 | tail -n 20 >&2; fail "not ready with --network=none"; fi
if [ -n "$OFFLINE_S" ]; then
  if podman exec "$C_OFFLINE" python -c "
import urllib.request as u
page = u.urlopen('http://127.0.0.1:8000/docs', timeout=5).read().decode()
assert '/docs-assets/swagger-ui-bundle.js' in page and 'cdn.' not in page, page[:300]
u.urlopen('http://127.0.0.1:8000/docs-assets/swagger-ui-bundle.js', timeout=5).read()
u.urlopen('http://127.0.0.1:8000/openapi.json', timeout=5).read()"; then
    ok "/docs works without a network (page, local Swagger UI assets, /openapi.json)"
  else
    fail "/docs with --network=none"
  fi
fi

# --- 7. SIGTERM ------------------------------------------------------------------------------------
log "SIGTERM (podman stop -t 10)"
for c in "$C_MAIN" "$C_OFFLINE"; do
  T=$(date +%s.%N)
  podman stop -t 10 "$c" >/dev/null 2>"$WORK/podman.err" || cat "$WORK/podman.err" >&2
  STOP_S=$(elapsed "$T")
  CODE=$(podman inspect -f '{{.State.ExitCode}}' "$c")
  if [ "$CODE" = 0 ] && python3 -c "import sys; sys.exit(float(sys.argv[1]) >= 10)" "$STOP_S"; then
    ok "$c exited 0 in $STOP_S s"
  else
    fail "$c: exit code $CODE after $STOP_S s (137 = killed after the grace period)"
  fi
done
podman logs "$C_MAIN" 2>&1 | grep -q "Finished server process" && ok "Uvicorn shut down gracefully" || fail "no graceful shutdown in the logs"

# --- 8. sizes ----------------------------------------------------------------------------------------
log "sizes"
python3 - "$IMAGE" "$BASE_IMAGE" "$BUDGET_MB" "$IMAGE_BUDGET_MB" <<'PY' || FAILED=1
import json, subprocess, sys
image, base, budget, image_budget = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
def inspect(ref): return json.loads(subprocess.check_output(["podman", "image", "inspect", ref]))[0]
def history(ref): return json.loads(subprocess.check_output(["podman", "history", "--format", "json", "--no-trunc", ref]))
total, base_size = inspect(image)["Size"], inspect(base)["Size"]
own = history(image)[: len(history(image)) - len(history(base))]
added = 0
for layer in reversed(own):
    size = layer.get("size", layer.get("Size", 0))
    if size:
        added += size
        step = (layer.get("createdBy") or layer.get("CreatedBy") or "").replace("/bin/sh -c #(nop) ", "")
        print(f"  {size / 1e6:8.1f} MB  {step[:100]}")
def verdict(mb, limit): return "ok" if mb <= limit else "FAIL: over by %.1f MB" % (mb - limit)
print(f"  project layers {added / 1e6:.1f} MB (budget {budget:.0f} MB: {verdict(added / 1e6, budget)})")
print(f"  whole image {total / 1e6:.1f} MB = base {base_size / 1e6:.1f} MB + project layers {added / 1e6:.1f} MB "
      f"(budget {image_budget:.0f} MB: {verdict(total / 1e6, image_budget)})")
sys.exit(added / 1e6 > budget or total / 1e6 > image_budget)
PY

podman run --rm "${RUN[@]}" --network=none --entrypoint python "$IMAGE" -c '
import os, sys
sp = next(p for p in sys.path if p.endswith("site-packages"))
def size(p):
    if os.path.isfile(p): return os.path.getsize(p)
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(p) for f in fs)
rows = sorted(((size(os.path.join(sp, n)), n) for n in os.listdir(sp)), reverse=True)
print("  venv site-packages by size: " + ", ".join(f"{n} {s / 1e6:.1f}" for s, n in rows[:9]) + " MB")
' 2>/dev/null || true

log "verify finished in $(elapsed "$T_START") s (build ${BUILD_S} s, ready ${READY_S} s)"
if [ "$FAILED" = 1 ]; then echo "verify: FAILED" >&2; exit 1; fi
echo "verify: all checks passed"
