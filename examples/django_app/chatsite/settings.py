"""Settings for the streaming example: no database, no apps beyond what a view needs."""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "chatsite.urls"
WSGI_APPLICATION = "chatsite.wsgi.application"
INSTALLED_APPS: list = []
MIDDLEWARE: list = []
DATABASES: dict = {}
USE_TZ = True

#: The model string the view's provider is built from (its key comes from the environment).
LLM_SYNC_MODEL = os.environ.get("LLM_SYNC_MODEL", "anthropic:claude-sonnet-4-5")
