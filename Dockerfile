# Slipway's container image: one binary on Debian, run as an unprivileged user, its data
# in a volume.
#
# From the source tree (the Rust build runs in the first stage):
#
#   docker build -t slipway .
#
# Around a binary built elsewhere (a CI artifact, a cross build), placed at dist/slipway:
#
#   docker build --build-arg SLIPWAY_BUILD=prebuilt -t slipway .
#
# Run it, with the data directory (database, blobs, signing keys) in a named volume:
#
#   docker run -d --name slipway -p 5000:5000 -v slipway-data:/var/lib/slipway slipway
#
# Configuration: SLIPWAY_* variables (-e), or a TOML file mounted and named with
# `--config` (see the README's deployment section). `docker exec slipway slipway admin ...`
# runs the maintenance commands against the same data.

ARG RUST_IMAGE=rust:1-bookworm
ARG BASE_IMAGE=debian:bookworm-slim
ARG SLIPWAY_BUILD=source

FROM ${RUST_IMAGE} AS build-source
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p slipway && install -D target/release/slipway /out/slipway

FROM ${BASE_IMAGE} AS build-prebuilt
COPY dist/slipway /out/slipway

# Only the stage SLIPWAY_BUILD names is built (BuildKit skips the other).
FROM build-${SLIPWAY_BUILD} AS build

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="Slipway" \
      org.opencontainers.image.description="A self-hosted marketplace for container software: registry, store, scanner" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
# A fixed, unprivileged id: a volume or host directory mounted at /var/lib/slipway is
# chowned to it once (`chown -R 10001:10001`), and stays readable to no one else.
RUN groupadd --system --gid 10001 slipway \
    && useradd --system --uid 10001 --gid slipway --home-dir /var/lib/slipway --no-create-home --shell /usr/sbin/nologin slipway \
    && install -d -m 0700 -o slipway -g slipway /var/lib/slipway
COPY --from=build /out/slipway /usr/local/bin/slipway
ENV SLIPWAY_LISTEN=0.0.0.0:5000 \
    SLIPWAY_DATA_DIR=/var/lib/slipway
USER 10001:10001
WORKDIR /var/lib/slipway
VOLUME /var/lib/slipway
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=6s --start-period=60s --retries=3 CMD ["slipway", "healthcheck"]
ENTRYPOINT ["slipway"]
CMD ["serve"]
