# One image per service, built from one file: `docker build --target order-consumer .`
# (Compose builds every target; the stages below `runtime` share all their layers, so the
# images cost the disk of one.)
#
#   build   : a venv with the hash-pinned runtime dependencies (binary wheels only) and the
#             project's own packages, built into wheels by a pinned hatchling that stays here
#   runtime : that venv (no pip, no setuptools) on a clean base, a non-root user, no compilers
#   order-consumer, payment-consumer, dlq-worker, report, producer, verifier, setup :
#             runtime + the command (every image also has ecom-redrive, run by hand)
#
# The long-running services serve /metrics, /livez and /readyz on port 8000 (ECOM_HTTP__PORT);
# their HEALTHCHECK is `ecom-health`, which asks /readyz: unhealthy while Cassandra or Pub/Sub
# cannot be reached, healthy again once they can. The report serves its page on that port, and
# its /readyz answers once the figures have been computed and the last attempt succeeded.
#
# PYTHON_IMAGE lets another base be given (tests on machines with no registry pass a local
# stand-in); by default it is the official slim image. Every service is started in exec form, so
# SIGTERM reaches Python itself and the service's own handler drains it. Run the images with an
# init (`docker run --init`, `init: true` in compose.yaml): before its handler is installed, a
# PID 1 ignores SIGTERM, so a stop during start-up would wait for the kill.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# /opt/ecom is what ships: a venv without pip or setuptools, filled by the build venv's pip.
RUN python -m venv /opt/build && python -m venv --without-pip /opt/ecom
COPY requirements/runtime.txt requirements/build.txt /tmp/requirements/
RUN /opt/build/bin/pip install --require-hashes --only-binary=:all: -r /tmp/requirements/build.txt \
 && /opt/build/bin/pip --python /opt/ecom/bin/python install \
      --require-hashes --only-binary=:all: -r /tmp/requirements/runtime.txt
COPY shared /src/shared
COPY services /src/services
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels \
      /src/shared /src/services/order-consumer /src/services/payment-consumer \
      /src/services/dlq-worker /src/services/producer /src/services/verifier \
      /src/services/redrive \
 && /opt/build/bin/pip --python /opt/ecom/bin/python install --no-deps --no-index /tmp/wheels/*.whl

# The report's venv: the same, plus DuckDB and PyArrow (requirements/report.txt) and the report
# package. Only the report image takes it, so the other images do not carry those 240 MB.
FROM build AS build-report
COPY requirements/report.txt /tmp/requirements/
RUN /opt/build/bin/pip --python /opt/ecom/bin/python install \
      --require-hashes --only-binary=:all: -r /tmp/requirements/report.txt \
 && /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/report-wheel \
      /src/services/report \
 && /opt/build/bin/pip --python /opt/ecom/bin/python install --no-deps --no-index \
      /tmp/report-wheel/*.whl

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="ecom-pipeline" org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --system --uid 10001 --user-group --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin ecom \
 && mkdir /data && chown ecom:ecom /data
COPY --from=build /opt/ecom /opt/ecom
ENV PATH=/opt/ecom/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# /data (owned by the service user) is where the producer writes its manifest: a named volume
# mounted there starts with this owner. No VOLUME line: consumers would each leave one behind.
USER ecom:ecom

# What the long-running services share: the port of their HTTP endpoints and the healthcheck.
FROM runtime AS long-running
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["ecom-health"]

FROM long-running AS order-consumer
CMD ["ecom-order-consumer"]

FROM long-running AS payment-consumer
CMD ["ecom-payment-consumer"]

FROM long-running AS dlq-worker
CMD ["ecom-dlq-worker"]

# The live store report; ECOM_HTTP__PORT (8000) is the page's port as well as the probe's.
FROM long-running AS report
COPY --from=build-report /opt/ecom /opt/ecom
CMD ["ecom-report", "serve", "--host", "0.0.0.0"]

FROM runtime AS producer
CMD ["ecom-producer"]

FROM runtime AS verifier
CMD ["ecom-verify", "--manifest", "/data/manifest.jsonl"]

FROM runtime AS setup
CMD ["ecom-setup"]
