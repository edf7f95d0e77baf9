# syntax=docker/dockerfile:1
# Caravan's image: the `caravan` console script in a virtualenv on python:3.11-slim.
#
#   docker build -t caravan:0.1.0 .
#   kind load docker-image caravan:0.1.0        # then: helm install caravan charts/caravan
#
# Two stages: the builder installs the project (pip install ., i.e. pyproject.toml) into
# /opt/venv; the final stage copies only that venv, so no build tools, pip caches or
# sources end up in the image.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# README.m[d]: the glob lets the build work whether or not README.md exists yet
# (pyproject names it as the package's readme).
COPY pyproject.toml README.m[d] ./
COPY caravan ./caravan
# A regular (non-editable) install: the venv holds the package and its data files
# (settings schema, resources), not a link to /src.
RUN pip install --upgrade pip \
 && pip install . \
 && caravan --help >/dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="caravan" \
      org.opencontainers.image.description="The Cluster API on Kubernetes: Kopf operator + HTTP API" \
      org.opencontainers.image.licenses="Apache-2.0"
# Unbuffered logs reach `kubectl logs` at once; no .pyc writes (read-only root file system).
# The image is meant for clusters, so its default is kubernetes authentication (Caravan's
# own default, none, is for a developer's loopback and refuses 0.0.0.0).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CARAVAN_AUTH_MODE=kubernetes
# The user the chart runs as (runAsUser 10001); no home, no shell, no privileges.
RUN groupadd --system --gid 10001 caravan \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin caravan
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["caravan"]
# The chart replaces this with `caravan run --host 0.0.0.0 --port 8080` and its env.
CMD ["run", "--host", "0.0.0.0"]
