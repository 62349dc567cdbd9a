#!/usr/bin/env bash
# Prepares ./rootfs for Dockerfile.prebuilt: the static binary, the host's CA
# bundle, /tmp (1777) and /secrets (owned by 65534). Then, for example:
#   buildah --storage-driver vfs bud --isolation chroot -f Dockerfile.prebuilt -t secrets-sync .
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-$(scripts/build-static.sh)}"
ca="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
rm -rf rootfs
mkdir -p rootfs/etc/ssl/certs rootfs/tmp rootfs/secrets
install -m 0755 "$bin" rootfs/secrets-sync
install -m 0644 "$ca" rootfs/etc/ssl/certs/ca-certificates.crt
chmod 1777 rootfs/tmp
chown 65534:65534 rootfs/secrets 2>/dev/null || echo "warning: cannot chown rootfs/secrets (not root)" >&2
du -sb rootfs | awk '{print "rootfs: " $1 " bytes"}' >&2
