FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MONITOR_CONFIG=/config/config.toml

WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY monitor ./monitor
# gcc builds the rule presearch (monitor/rules/_presearch.c), then leaves the image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install . \
    && python -P -c "import monitor.rules._presearch" \
    && apt-get purge -y --auto-remove gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin monitor \
    && mkdir -p /data /config \
    && chown monitor:monitor /data

COPY rules /config/rules
COPY config.example.toml /tmp/config.example.toml
RUN sed 's|^database = "monitor.db"|database = "/data/monitor.db"|' \
        /tmp/config.example.toml > /config/config.toml \
    && rm /tmp/config.example.toml

# `monitor healthcheck` asks the daemon's /readyz ([web] listen, 127.0.0.1:8421 by default).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["monitor", "healthcheck"]

USER monitor
WORKDIR /data
VOLUME ["/data"]
ENTRYPOINT ["monitor"]
CMD ["run"]
