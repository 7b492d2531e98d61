# syntax=docker/dockerfile:1.7
# One image for every role of the platform: `bnpl serve`, `bnpl worker`, `bnpl migrate`,
# `bnpl sandbox` (the role is the command; see deploy/k8s and deploy/compose.yaml).
#
#   docker build -t bnpl:dev .
#   docker run --rm -p 8000:8000 bnpl:dev serve --host 0.0.0.0 --workers 2
#
# Two stages: `build` resolves nothing (uv.lock, `uv sync --frozen`) and installs the
# project and its locked dependencies into /opt/venv; `runtime` is a slim Python with that
# venv, one shared library LightGBM needs, no compiler, no uv, no package cache, run as an
# unprivileged user. Nothing under / is written at run time (bytecode is compiled at build
# time, temporary files go to /tmp), so the container runs with a read-only root filesystem
# and an emptyDir (or tmpfs) on /tmp. Secrets come from the environment (Secret objects),
# never from the image.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
# The dependencies first: this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

FROM ${PYTHON_IMAGE} AS runtime
# libgomp1: LightGBM's OpenMP runtime (the risk model); the only package added.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1=12.2.0-14+deb12u1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 bnpl \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin bnpl
COPY --from=build --chown=root:root /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    BNPL_DATA_DIR=/tmp/bnpl \
    BNPL_LOG_JSON=true
WORKDIR /tmp
USER 10001:10001
EXPOSE 8000 8100
ENTRYPOINT ["bnpl"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
