# The Comfy Workshop image: the queue manager (`comfy-workshop serve`, the default command), and
# from the same image the GPU side (`comfy-workshop worker`, `comfy-workshop simulator`) and the
# operator's commands (`docker compose exec queue-manager comfy-workshop status`).
#
# BASE_IMAGE: any Debian-like image with python3 (3.11+) and its venv module. The default is the
# official slim Python image; an air-gapped build passes its own (the tests build one from
# Debian packages: tests/deploy/support/images.py).
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
# Dependencies first, in their own layer: editing the code does not reinstall them.
COPY pyproject.toml README.md /src/
RUN python3 -m venv /opt/comfy-workshop \
    && /opt/comfy-workshop/bin/pip install --no-cache-dir --disable-pip-version-check \
       --upgrade pip \
    && mkdir -p /src/queue_manager /src/admin /src/frontend /src/worker \
    && touch /src/queue_manager/__init__.py /src/admin/__init__.py /src/frontend/__init__.py \
       /src/worker/__init__.py \
    && /opt/comfy-workshop/bin/pip install --no-cache-dir --disable-pip-version-check /src \
    && /opt/comfy-workshop/bin/pip uninstall -y -q comfy-workshop \
    && rm -rf /src
COPY pyproject.toml README.md /src/
COPY queue_manager /src/queue_manager
COPY admin /src/admin
COPY frontend /src/frontend
COPY worker /src/worker
RUN /opt/comfy-workshop/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps /src

FROM ${BASE_IMAGE}
# A fixed uid/gid, the same as the native install's (`comfy-workshop systemd install`), so one
# data folder can move between Docker and systemd without a chown.
RUN groupadd --system --gid 10001 comfy-workshop \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin comfy-workshop \
    && mkdir -p /data && chown 10001:10001 /data
COPY --from=build /opt/comfy-workshop /opt/comfy-workshop
ENV PATH=/opt/comfy-workshop/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CW_HOST=0.0.0.0 \
    CW_PORT=8188 \
    CW_DATA_DIR=/data
WORKDIR /data
USER 10001:10001
EXPOSE 8188
# The queue manager's own liveness. Other roles (worker, simulator, one-shot commands) get their
# own healthcheck in docker-compose.yml.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["comfy-workshop", "healthcheck"]
CMD ["comfy-workshop", "serve"]
