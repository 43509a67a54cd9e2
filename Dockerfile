# syntax=docker/dockerfile:1

FROM python:3.11-slim AS builder
WORKDIR /src
COPY pyproject.toml ./
COPY app/ app/
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels accounting-service
RUN useradd --system --user-group --no-create-home app

WORKDIR /srv
COPY migrations/ migrations/
COPY gunicorn.conf.py ./
# Only for the embedded SQLite default; production sets DATABASE_URL to PostgreSQL and runs
# `accounting db upgrade` as a release step before the new image serves.
RUN mkdir -p var && chown app:app var

USER app
ENV ACCOUNTING_BIND=0.0.0.0:8000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=3)"]
CMD ["accounting", "serve", "--host", "0.0.0.0", "--port", "8000"]
