# syntax=docker/dockerfile:1
# One image for every RaceWeb process; the command picks the role (docs/ARCHITECTURE.md):
#   web     daphne -b 0.0.0.0 -p 8000 --proxy-headers --websocket_timeout 604800 raceweb.asgi:application (default)
#   relay   python manage.py relay
#   worker  celery -A raceweb worker -Q simulation.quorum --prefetch-multiplier 1
#   beat    celery -A raceweb beat
#   migrate python manage.py migrate

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY requirements.txt .
# The lock (python3 dev.py lock) installed under /install with every download checked
# against its hash; anything built from source is built here, so the runtime stage needs no
# compiler. The runtime stage copies the installed tree as is (same base image, so the same
# /usr/local layout): wheels built here from an sdist would not match the lock's hashes if
# the runtime stage installed them again.
RUN pip install --require-hashes --prefix=/install -r requirements.txt


FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=raceweb.settings \
    DEBUG=False \
    STATIC_MANIFEST=True \
    METRICS_PORT=9100

RUN groupadd --system --gid 10001 raceweb \
    && useradd --system --uid 10001 --gid raceweb --home-dir /app --shell /usr/sbin/nologin raceweb

COPY --from=builder /install /usr/local

WORKDIR /app
COPY --chown=root:root . .

# collectstatic imports the production settings, which refuse the development key:
# this throwaway key exists only for this one command and is not kept in the image.
RUN SECRET_KEY="collectstatic-only-build-key-not-used-at-runtime-0123456789" \
    python manage.py collectstatic --noinput

USER 10001:10001
EXPOSE 8000 9100

HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8000/healthz', timeout=4)"]

CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--proxy-headers", "--websocket_timeout", "604800", "raceweb.asgi:application"]
