# One image for every component of the mesh. The command chooses the component:
#   python -m gateway (the default), python -m broker_svc, python -m engine_svc,
#   python -m sync_svc, python -m recon_svc, python -m exchange_sim.
# Each is configured by environment variables only, exactly as `copytrade up` starts it
# (meshctl/launcher.py). The runtime writes nothing outside /tmp and /var/lib/copytrade, so the
# container runs with a read-only root filesystem (mount a tmpfs at /tmp).

# Builder: build the wheel (gen/ and every package, as pyproject's package finder lays them out)
# and install it with its dependencies into a virtualenv that the runtime stage copies whole.
FROM python:3.11.13-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
RUN python -m venv /opt/venv

# Only what the wheel is made of (.dockerignore keeps the rest out of the context too).
COPY pyproject.toml README.md ./
COPY gen/ gen/
COPY meshkit/ meshkit/
COPY broker_svc/ broker_svc/
COPY engine_svc/ engine_svc/
COPY sync_svc/ sync_svc/
COPY recon_svc/ recon_svc/
COPY gateway/ gateway/
COPY exchange_sim/ exchange_sim/
COPY meshctl/ meshctl/

# Versions come from pyproject.toml (ccxt pinned exactly there); pip compiles the .pyc files
# now, so the read-only runtime never needs to write them.
RUN /opt/venv/bin/pip install --no-cache-dir /src \
    && /opt/venv/bin/python -c "import copytrade.broker.v1.broker_service_pb2, gateway.server"

# Runtime: the same Python, the virtualenv, a non-root user and nothing else.
FROM python:3.11.13-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="copytrade" \
      org.opencontainers.image.description="The copytrade mesh: every component in one image" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed UID/GID, so that volumes, certificate files and Kubernetes' runAsUser can name it.
RUN groupadd --system --gid 10001 copytrade \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /var/lib/copytrade --shell /usr/sbin/nologin copytrade \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/copytrade

COPY --from=builder /opt/venv /opt/venv

# HOME and TMPDIR point at /tmp (a tmpfs or emptyDir): anything a library caches lands there.
# Logs are JSON lines on stdout (docs/logging.md); gRPC's C-core writes its own plain lines to
# stderr, errors only with GRPC_VERBOSITY=ERROR.
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GRPC_VERBOSITY=ERROR \
    HOME=/tmp \
    TMPDIR=/tmp

# SQLite files (the default DATABASE_URL is relative to the working directory) live here; with
# PostgreSQL nothing is written.
WORKDIR /var/lib/copytrade
VOLUME ["/var/lib/copytrade"]

USER 10001:10001

# gateway 8080; broker, engine, sync, recon gRPC 50051-50054; health-only gRPC (HEALTH_PORT)
# 8081; metrics 9091-9094; emulators 9101-9103.
EXPOSE 8080 8081 50051 50052 50053 50054 9091 9092 9093 9094 9101 9102 9103

CMD ["python", "-m", "gateway"]
