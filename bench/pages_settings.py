"""Settings for bench/pages_bench.py only (never the product's): the product's settings, the bare
views of bench/pages_urls.py mounted beside its pages, and a header with each response's query count."""

from changecontrol.settings import *  # noqa: F403
from changecontrol.settings import MIDDLEWARE, STORAGES

ROOT_URLCONF = "pages_urls"
DEBUG = False
ALLOWED_HOSTS = ["*"]
MFA_REQUIRED_ROLES = []  # the benchmark's users sign in without a second step
SESSION_IDLE_MINUTES = 0  # no timeouts: a session write now and then would change a count
SESSION_ABSOLUTE_HOURS = 0
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
# First: the count covers every middleware's queries (the session, the user, the roles).
MIDDLEWARE = ["pages_bare.QueryCountMiddleware", *MIDDLEWARE]
