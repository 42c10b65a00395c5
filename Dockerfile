# syntax=docker/dockerfile:1
#
# mediagate: a small runtime image with the release binary, the configs and the
# demo media.
#
#   docker build -t mediagate .
#   docker run --rm -p 8080:8080 mediagate
#   curl -i http://127.0.0.1:8080/local/demo/clip.mp4
#
# The default config (config/docker.toml) serves the demo media from
# /srv/media on 0.0.0.0:8080. Mount your own config over
# /etc/mediagate/mediagate.toml for real storage.

# ---------------------------------------------------------------- build
FROM rust:1-bookworm AS builder
WORKDIR /build

# Dependencies first, in a layer of their own: it is rebuilt only when
# Cargo.toml or Cargo.lock change, not on every source edit.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

# The project itself. `touch` makes cargo see the sources as newer than the
# placeholder build of the step above.
COPY src ./src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin mediagate \
    && cp target/release/mediagate /usr/local/bin/mediagate

# ---------------------------------------------------------------- runtime
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 mediagate \
    && useradd --system --uid 10001 --gid mediagate --home-dir /nonexistent --shell /usr/sbin/nologin mediagate

COPY --from=builder /usr/local/bin/mediagate /usr/local/bin/mediagate
# The reference configs (every key documented in config/mediagate.toml) and the
# demo media with its README; relative paths in config/demo.toml resolve from
# the working directory below.
COPY config/ /usr/share/mediagate/config/
COPY examples/ /usr/share/mediagate/examples/
COPY examples/media/ /srv/media/
COPY config/docker.toml /etc/mediagate/mediagate.toml

WORKDIR /usr/share/mediagate
USER mediagate:mediagate
EXPOSE 8080

# `mediagate healthcheck` GETs http://127.0.0.1:8080/healthz and exits 0 or 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["mediagate", "healthcheck"]

# SIGTERM drains in-flight responses for up to [server] shutdown_grace.
STOPSIGNAL SIGTERM
CMD ["mediagate", "serve", "--config", "/etc/mediagate/mediagate.toml"]
