# authsvc container: `docker build -t authsvc .`, then
# `docker run -p 50051:50051 -e AUTHSVC_DATABASE_URL=postgresql://... authsvc`.
#
# Two stages: the first builds a virtualenv holding authsvc and its dependencies (wheels
# only, no compiler needed); the second copies just that virtualenv onto a clean slim base
# and runs it as an unprivileged user. Both stages use the same base, so the venv's
# interpreter path stays valid.
#
# BASE picks that base: any Debian-like image with Python 3.11+ on PATH as `python3`, the
# venv module (ensurepip), groupadd/useradd and CA certificates. The official image is the
# default; `make container-test` builds on a debootstrapped Debian bookworm instead
# (`--build-arg BASE=localhost/authsvc-base:bookworm`, see README "Container").
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
RUN python3 -m venv /opt/authsvc
COPY pyproject.toml setup.py README.md ./
COPY clients/python ./clients/python
COPY authsvc ./authsvc
COPY migrations ./migrations
# The dependency ranges are pinned in setup.py; `.` is authsvc itself, and setup.py names
# ./clients/python (the authsvc-client distribution: its generated stubs) by file URL,
# so pip takes the client from here and not from an index.
RUN /opt/authsvc/bin/pip install --no-cache-dir .


FROM ${BASE} AS runtime

# A fixed numeric uid/gid so volume ownership and `runAsUser` policies can name it.
RUN groupadd --system --gid 10001 authsvc \
    && useradd --system --uid 10001 --gid authsvc --home-dir /var/lib/authsvc \
        --create-home --shell /usr/sbin/nologin authsvc

COPY --from=build /opt/authsvc /opt/authsvc

# Listen on every interface inside the container (the default 127.0.0.1 would be
# unreachable through a published port); the same for Prometheus metrics. JSON logs for
# log collectors. SQLite in the volume is the zero-setup default; set
# AUTHSVC_DATABASE_URL to a postgresql:// URL in production.
ENV PATH=/opt/authsvc/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    AUTHSVC_ADDRESS=0.0.0.0:50051 \
    AUTHSVC_METRICS_ADDRESS=0.0.0.0:9090 \
    AUTHSVC_LOG_FORMAT=json \
    AUTHSVC_DATABASE_URL=sqlite:////var/lib/authsvc/authsvc.db

USER 10001:10001
WORKDIR /var/lib/authsvc
VOLUME ["/var/lib/authsvc"]
# gRPC, then Prometheus metrics (/metrics).
EXPOSE 50051 9090

# The gRPC health service answers SERVING while the database does; `authsvc health`
# exits 0 only then. Kubernetes probes can run the same command.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["authsvc", "health", "--address", "127.0.0.1:50051", "--timeout", "3"]

# `serve` migrates the schema first, then serves until SIGTERM and drains.
ENTRYPOINT ["authsvc"]
CMD ["serve"]
