# One image for every service of the P1 stack; the console script is the command:
#   docker run --rm p1-energy-stack p1-recorder --help
# Multi-arch (linux/amd64, linux/arm64, linux/arm/v7): pure Python on the official
# python image, every dependency from PyPI wheels or source; no arch-specific download.
#   docker buildx build --platform linux/amd64,linux/arm64 -t p1-energy-stack .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/p1
COPY pyproject.toml README.md ./
COPY services ./services
# the pinned runtime dependencies of pyproject.toml, and the services themselves
RUN /opt/p1/bin/pip install --no-cache-dir /src \
 && /opt/p1/bin/pip check \
 && find /opt/p1 -name '__pycache__' -prune -exec rm -rf {} +

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="p1-energy-stack" \
      org.opencontainers.image.description="P1 meter reader, peak forecaster, load controller, bridge, web and recorder" \
      org.opencontainers.image.licenses="MIT"
# a non-root user; in the dialout group so p1-reader may open /dev/ttyUSB0
RUN groupadd --system --gid 10001 p1 \
 && useradd --system --uid 10001 --gid p1 --groups dialout \
      --home-dir /var/lib/p1 --create-home --shell /usr/sbin/nologin p1
COPY --from=build /opt/p1 /opt/p1
ENV PATH=/opt/p1/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    P1_STATE_DIR=/var/lib/p1
WORKDIR /var/lib/p1
USER 10001:10001
# p1-web's HTTP port; every service's metrics and /healthz on METRICS_PORT (9100 in deploy/)
EXPOSE 8080 9100
CMD ["p1-web"]
