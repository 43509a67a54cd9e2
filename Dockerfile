# syntax=docker/dockerfile:1
# The service image. PostgreSQL comes from DATABASE_URL (required: the image never falls back to
# a SQLite file inside the container); migrations are an explicit release step, or run at start
# with ACCOUNTING_MIGRATE_ON_START=1. README.md, "Run in production", shows both.

FROM python:3.11-slim AS builder
WORKDIR /src
COPY pyproject.toml ./
COPY app/ app/
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# WeasyPrint lays out the invoice and credit-note PDFs with Pango and a font.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
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

USER app
ENV ACCOUNTING_BIND=0.0.0.0:8000 \
    ACCOUNTING_REQUIRE_DATABASE_URL=1
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=3)"]
CMD ["accounting", "serve"]
