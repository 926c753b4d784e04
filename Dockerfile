# syntax=docker/dockerfile:1
# ai-gateway container image: `docker build -t ai-gateway .` (docker-compose.yml builds it too).
#
# Runtime base: debian:bookworm-slim rather than gcr.io/distroless/cc-debian12:nonroot. The binary
# needs only glibc, libgcc_s and the system CA store (rustls verifies upstream TLS against it), so
# both work; distroless is smaller and has no shell, but then the image cannot carry a HEALTHCHECK
# (no curl, no shell, and the gateway has no self-check subcommand). slim keeps bash, which can
# speak HTTP to /livez over /dev/tcp, so the health check needs no extra package. Nothing else is
# installed beyond ca-certificates, and the process runs as an unprivileged user.

# ---- build --------------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src
# .dockerignore keeps target/, .git and .venv out of the context.
COPY . .
# The cache mounts keep the crate registry and incremental artefacts between builds; the binary is
# copied out of the cached target dir in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ai-gateway \
    && install -D -m 0755 target/release/ai-gateway /out/ai-gateway

# ---- runtime ------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/ai-gateway --create-home \
        --shell /usr/sbin/nologin ai-gateway
COPY --from=builder /out/ai-gateway /usr/local/bin/ai-gateway

# In a container the gateway must listen on every interface, not the 127.0.0.1 default.
ENV AI_GATEWAY_LISTEN=0.0.0.0:8080
# Listening on every interface, it must not serve anonymous callers: authentication is required
# (set API_KEYS, JWT or virtual keys to let clients in; AUTH_REQUIRED=false to opt out).
ENV AUTH_REQUIRED=true
# The default history database (sqlite://ai-gateway.db) lands in the writable home directory;
# compose sets DATABASE_URL to Postgres instead.
WORKDIR /var/lib/ai-gateway
USER 10001:10001
EXPOSE 8080

# GET /livez over bash's /dev/tcp on the port of AI_GATEWAY_LISTEN; healthy on a 200 status line.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${AI_GATEWAY_LISTEN##*:} && printf 'GET /livez HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

# SIGTERM (docker stop) drains requests, flushes the history queue and exits 0.
ENTRYPOINT ["/usr/local/bin/ai-gateway"]
CMD ["serve"]
