# tfq: one image for every role (worker, dispatcher, HTTP intake, sandbox); the role is
# the `tfq` subcommand given as the container's command.
#
#   docker build -t tfq .
#   docker run --rm tfq --help
#   docker run --rm -e TFQ_REDIS_URL=redis://... -e TFQ_TENANTS_FILE=/run/secrets/tenants \
#       -v "$PWD/tenants.toml:/run/secrets/tenants:ro" tfq worker
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# An unprivileged user with a fixed uid, so the tenants file mounted at run time can be
# made readable to it alone: `chown 10001 tenants.toml && chmod 400 tenants.toml`.
RUN groupadd --system --gid 10001 tfq \
 && useradd --system --uid 10001 --gid tfq --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin tfq

WORKDIR /app

# --- dependencies ---------------------------------------------------------------------
# Exactly the packages pinned in requirements.lock (the runtime set, no dev extras), every
# file checked against its sha256: a changed file or a dependency missing from the lock
# stops the build. setuptools, the project's build backend, is pinned there too. `make lock`
# regenerates the file. This layer stays cached while only the code changes.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# --- the project (no dev extras) ------------------------------------------------------
# README.md is the package's readme (pyproject.toml); ops/ holds the sandbox and the demo
# tenants file (/app/ops/testkit/examples/tenants.toml), used by the compose demo profile.
# --no-deps: nothing beyond the lock gets in; --no-build-isolation: built with the locked
# setuptools instead of one pip would fetch unpinned.
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY producers ./producers
COPY ops ./ops
RUN pip install --no-deps --no-build-isolation . \
 && tfq --help >/dev/null \
 && mkdir /data && chown tfq:tfq /data

# The archive's SQLite file (when TFQ_ARCHIVE_URL is not set) and the kept PDFs: mount a
# volume here (compose's tfq-data), owned by the image's user.
ENV TFQ_DATA_DIR=/data

USER tfq

# 8000: `tfq serve` (intake, /metrics, /healthz); 9808: a worker's /metrics
# (TFQ_METRICS_PORT); 8099: `tfq sandbox` (demo only).
EXPOSE 8000 8099 9808

# SIGTERM (Docker's stop signal) is a warm shutdown for `tfq worker`: calls in flight
# finish first; give the container longer than TFQ_API_TIMEOUT_SECONDS to stop.
ENTRYPOINT ["tfq"]
CMD ["--help"]
