# syntax=docker/dockerfile:1
# One image for every process of the service: the API (the default command, serving the
# frontend too), the outbox worker (`python -m worker`) and migrations (`alembic upgrade head`).
# Build from the repository root: docker build -t fastapi-starter .

# The frontend's bundle, built with the Node.js its lock file was made with.
FROM node:20.20-bookworm-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
# Vite writes the bundle into ../app/frontend, i.e. /src/app/frontend.
RUN npm run build

# The locked dependencies, without the development ones, in a virtualenv of their own.
FROM python:3.11-slim-bookworm AS dependencies
ENV UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
# The uv version the Makefile pins.
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production \
    HOST=0.0.0.0 \
    PORT=8000
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent app
WORKDIR /srv
COPY --from=dependencies /opt/venv /opt/venv
COPY alembic.ini ./
COPY migrations/ migrations/
COPY worker/ worker/
COPY app/ app/
COPY --from=frontend /src/app/frontend/ app/frontend/
# Compiled now, so that a read-only root file system costs no start-up time.
RUN python -m compileall -q app worker migrations
USER 10001:10001
EXPOSE 8000
CMD ["python", "-m", "app"]
