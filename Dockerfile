# syntax=docker/dockerfile:1
# Container image for rtx-engine: a Rust build stage and a slim Debian runtime that runs the
# binary as a non-root user (uid 10001) on port 7999, with its SQLite data under /var/lib/rtx/data.
# Build from the repository root: docker build -t rtx-engine .

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# The cache mounts keep the registry and target directory between builds; the binary is copied
# out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release -p rtx-engine --locked \
 && install -m 0755 target/release/rtx-engine /usr/local/bin/rtx-engine

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 rtx \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/rtx --no-create-home --shell /usr/sbin/nologin rtx \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/rtx
COPY --from=builder /usr/local/bin/rtx-engine /usr/local/bin/rtx-engine
# The default database URL (sqlite://data/rtx-engine.db) is relative to this directory.
WORKDIR /var/lib/rtx
USER 10001:10001
EXPOSE 7999
ENTRYPOINT ["/usr/local/bin/rtx-engine"]
