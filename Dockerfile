# syntax=docker/dockerfile:1
#
# One image for the whole stack: session-server, jwt-server and authbench (release builds)
# on debian-slim, running as an unprivileged user. docker-compose.yml builds it
# (`docker compose build`); by hand: `docker build -t authbench:local .`
#
# Nothing secret is baked in: the JWT signing key is made at run time by `jwt-server keygen`
# into a volume (see the jwt-keygen service in docker-compose.yml).

# The toolchain the workspace is built and tested with. Cargo.toml's rust-version (1.88)
# is the oldest one allowed; crates/harness/tests/compose.rs checks this is not older.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
# The cache mounts keep the crates.io downloads and the target directory between builds,
# so a change to the workspace recompiles its own crates, not the ~200 dependencies.
# The target directory is a cache mount, so the binaries are copied out of it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p session-server -p jwt-server -p harness --bins \
    && mkdir -p /out \
    && cp target/release/session-server target/release/jwt-server target/release/authbench /out/

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# A fixed uid, so files the servers write into volumes (the JWT key) have a known owner.
# /keys is created here, owned by that user: Docker copies it, owner and mode, into an
# empty named volume mounted on it, which is what lets the unprivileged keygen write there.
RUN groupadd --system --gid 10001 authbench \
    && useradd --system --uid 10001 --gid authbench --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin authbench \
    && install -d -o authbench -g authbench -m 0700 /keys
COPY --from=build /out/session-server /usr/local/bin/session-server
COPY --from=build /out/jwt-server /usr/local/bin/jwt-server
COPY --from=build /out/authbench /usr/local/bin/authbench
COPY --chmod=0755 deploy/docker-entrypoint.sh /usr/local/bin/authbench-entrypoint
# Numeric, so a runtime can tell it is not root without reading /etc/passwd.
USER 10001:10001
# The servers' port in docker-compose.yml (`--listen 0.0.0.0:8000`).
EXPOSE 8000
ENTRYPOINT ["authbench-entrypoint"]
CMD ["session-server", "--listen", "0.0.0.0:8000", "--store", "memory"]
