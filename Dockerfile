# Portcullis: its binaries (`portcullis-worker`, `portcullis`, the Slack edge `portcullis-slack`) in a small
# non-root runtime image (the edge runs with `--entrypoint /usr/local/bin/portcullis-slack`).
#
#   docker build -t portcullis .                                      # settings: config/local.toml
#   docker build -t portcullis --build-arg CONFIG=deploy/prod.toml .  # your settings file, baked in
#   docker run --rm portcullis access|directory|posture|all
#
# Settings are read from $PORTCULLIS_CONFIG (the file below); PORTCULLIS__<SECTION>__<KEY> environment
# variables override single values (e.g. PORTCULLIS__STACK__PREFIX), as on ECS (infra/cloudformation/ecs.yaml).

# ---------------------------------------------------------------- build
# The toolchain of rust-toolchain.toml.
FROM rust:1.95.0-slim-bookworm AS build
# aws-lc-sys (TLS, JWT signatures) builds C code: a C toolchain and cmake.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p portcullis-worker -p portcullis-cli -p portcullis-slack \
 && mkdir -p /out \
 && cp target/release/portcullis-worker target/release/portcullis target/release/portcullis-slack /out/

# ---------------------------------------------------------------- run
# Distroless: glibc, CA certificates and nothing else (no shell, no package manager); the :nonroot
# variant runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG CONFIG=config/local.toml
COPY --from=build /out/portcullis-worker /out/portcullis /out/portcullis-slack /usr/local/bin/
COPY ${CONFIG} /etc/portcullis/portcullis.toml
ENV PORTCULLIS_CONFIG=/etc/portcullis/portcullis.toml
USER 65532:65532
# SIGTERM starts a graceful shutdown: in-flight messages finish within worker.shutdown_grace_seconds
# (25 s by default), then telemetry is flushed (5 s). ECS's stopTimeout is set above that (ecs.yaml).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/portcullis-worker"]
CMD ["all"]
