#!/usr/bin/env bash
# Builds the FROM-scratch image from the static binary (buildah, no base
# image pulled) and runs it with podman (runc) as uid 65534 with
# --read-only --cap-drop ALL against a real OpenBao dev server on the host:
# it must sync a secret into a mounted directory and `isready` must succeed
# inside it. Prints the image size. Installs buildah/podman/runc when missing
# (root, Debian).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v buildah >/dev/null || ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
  echo "installing buildah podman runc" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah podman runc uidmap >&2
fi
BAO="${BAO_BIN:-$(scripts/install-openbao.sh)}"
bin="${SECRETS_SYNC_STATIC_BIN:-$(scripts/build-static.sh)}"
image=localhost/secrets-sync:test
store=(--storage-driver vfs)
work="$(mktemp -d)"
name="secrets-sync-image-test-$$"
cleanup() {
  podman "${store[@]}" rm -f "$name" >/dev/null 2>&1 || true
  [ -n "${bao_pid:-}" ] && kill "$bao_pid" 2>/dev/null || true
  rm -rf "$work" rootfs
}
trap cleanup EXIT

scripts/image-rootfs.sh "$bin"
buildah "${store[@]}" bud --quiet --format docker --isolation chroot -f Dockerfile.prebuilt -t "$image" . >/dev/null
size=$(podman "${store[@]}" image inspect "$image" --format '{{.Size}}')
echo "image $image: $size bytes ($(awk "BEGIN {printf \"%.2f\", $size/1048576}") MiB)"
[ "$size" -lt $((20 * 1024 * 1024)) ] || { echo "image over 20 MiB" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BAO" server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$port" >"$work/bao.log" 2>&1 &
bao_pid=$!
export VAULT_ADDR="http://127.0.0.1:$port" VAULT_TOKEN=root
for _ in $(seq 1 100); do "$BAO" status >/dev/null 2>&1 && break; sleep 0.1; done
"$BAO" kv put -mount=secret image-test v=from-the-image >/dev/null

mkdir -p "$work/secrets"
chown 65534:65534 "$work/secrets"
cat >"$work/config.yaml" <<YAML
secrets:
  - name: image-test
    path: image-test
    files: [{path: /secrets/v, key: v}]
YAML
chmod 0644 "$work/config.yaml"
podman "${store[@]}" run -d --name "$name" --runtime runc --network host \
  --ulimit nofile=20000:20000 --ulimit nproc=1024:1024 \
  --read-only --cap-drop ALL --user 65534:65534 \
  -v "$work/config.yaml:/config.yaml:ro" -v "$work/secrets:/secrets" \
  -e VAULT_ADDR -e VAULT_TOKEN -e HTTP_PORT=0 \
  "$image" run >/dev/null
for _ in $(seq 1 100); do [ -s "$work/secrets/v" ] && break; sleep 0.1; done
if [ "$(cat "$work/secrets/v" 2>/dev/null)" != "from-the-image" ]; then
  echo "the container did not sync the secret:" >&2
  podman "${store[@]}" logs "$name" >&2 || true
  exit 1
fi
for _ in $(seq 1 50); do
  podman "${store[@]}" exec "$name" /secrets-sync isready >/dev/null 2>&1 && ready=1 && break
  sleep 0.1
done
[ "${ready:-}" = 1 ] || { echo "isready failed inside the container" >&2; exit 1; }
echo "image test passed: secret synced as uid $(stat -c %u "$work/secrets/v") and isready succeeded (read-only, no capabilities)"
