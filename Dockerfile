# syntax=docker/dockerfile:1
# secrets-sync: a static musl binary in a FROM-scratch image.
#
#   docker build -t secrets-sync .
#
# Without a Docker engine (or offline), build the binary on the host with
# scripts/build-static.sh and use Dockerfile.prebuilt instead.

FROM rust:1.95-bookworm AS build
# hadolint ignore=DL3008
RUN rustup target add x86_64-unknown-linux-musl \
 && apt-get update \
 && apt-get install -y --no-install-recommends musl-tools ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN CC_x86_64_unknown_linux_musl=musl-gcc \
    cargo build --release --locked --target x86_64-unknown-linux-musl \
 && mkdir -p /rootfs/tmp /rootfs/secrets /rootfs/etc/ssl/certs \
 && cp target/x86_64-unknown-linux-musl/release/secrets-sync /rootfs/secrets-sync \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && chmod 1777 /rootfs/tmp \
 && chown 65534:65534 /rootfs/secrets

FROM scratch
COPY --from=build /rootfs/ /
USER 65534:65534
ENV STATUS_FILE=/tmp/.ready-state \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    CONFIG_FILE=/config.yaml
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/secrets-sync", "isready"]
ENTRYPOINT ["/secrets-sync"]
CMD ["run"]
