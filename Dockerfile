# Plant Change Control: one image for web (gunicorn), worker and beat (celery).
# Build: docker build -t plant-change-control .   Run: see docker-compose.yml and README.md.
FROM python:3.11-slim

# PYTHONPATH=/app: the source under /app wins over the copy pip puts in site-packages, so
#   settings find templates/ and static/ next to the code (BASE_DIR).
# VAR_DIR: writable state (uploaded evidence and artifacts, beat schedule); mount a volume here.
# STATIC_ROOT: collected static files stay in the image, outside the VAR_DIR volume, so a new
#   image always serves its own assets (a volume would keep the first image's copy).
# WEB_CONCURRENCY: gunicorn's worker processes (read by gunicorn when --workers is not given).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=changecontrol.settings \
    VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles \
    WEB_CONCURRENCY=3

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first (gunicorn and whitenoise are among them), read from pyproject.toml, so a
# code change does not reinstall them.
# The "ldap" extra (LDAP / Active Directory sign-in) is included: python-ldap builds against
# libldap and libsasl, so the compiler comes in for the build and goes again (the headers stay, small).
COPY pyproject.toml /app/pyproject.toml
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential libldap2-dev libsasl2-dev \
    && python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['ldap']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt \
    && apt-get purge -y build-essential \
    && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/*

COPY . /app
RUN pip install --no-deps . \
    && rm -rf /app/build /app/*.egg-info

# Hashed, compressed static files for whitenoise (STORAGES in settings). A throwaway key:
# without one, settings would write a generated key file into the image. The real SECRET_KEY
# comes from .env at run time.
RUN DEBUG=0 \
    SECRET_KEY=build-only-not-secret-build-only-not-secret-build-only-not-secret \
    python manage.py collectstatic --noinput \
    && rm -rf "$VAR_DIR" \
    && mkdir -p "$VAR_DIR/media" \
    && chown -R app:app "$VAR_DIR"

USER app

EXPOSE 8000

# --threads > 1 selects gunicorn's gthread worker: a slow upload (artifacts up to
# ARTIFACT_MAX_MB) does not stall the worker's heartbeat.
CMD ["gunicorn", "changecontrol.wsgi:application", "--bind", "0.0.0.0:8000", \
     "--threads", "4", "--timeout", "120", "--access-logfile", "-"]
