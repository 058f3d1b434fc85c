"""Settings of the test DMS: a Django project shaped like the seed's, on any database.

The database comes from DMS_DATABASE_URL (sqlite:///PATH, postgresql+psycopg://USER@HOST:PORT/DB
or mysql+pymysql://USER@HOST:PORT/DB), the URLs the rest of the test suite uses, so one URL
names a database to both Django and eventvault.

On MariaDB Django runs on PyMySQL, the project's MariaDB driver, standing in for mysqlclient
(which needs a C compiler and MariaDB's client headers): PyMySQL's install_as_MySQLdb() is
the documented way, and its MySQLdb version_info passes Django's mysqlclient>=1.4.3 check.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit


def _database(url: str) -> dict[str, object]:
    if url.startswith("sqlite:///"):
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": url[len("sqlite:///"):]}
    parts = urlsplit(url)
    if parts.scheme.startswith("postgresql"):
        engine = "django.db.backends.postgresql"
    elif parts.scheme.startswith("mysql"):
        import pymysql
        pymysql.install_as_MySQLdb()
        engine = "django.db.backends.mysql"
    else:
        raise ValueError(f"DMS_DATABASE_URL: unsupported database {url!r}")
    return {"ENGINE": engine, "NAME": parts.path.lstrip("/"),
            "USER": parts.username or "", "PASSWORD": parts.password or "",
            "HOST": parts.hostname or "", "PORT": str(parts.port or "")}


SECRET_KEY = "test-only"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "dms"]
DATABASES = {"default": _database(os.environ["DMS_DATABASE_URL"])}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
# Fast hashing: the tests create users, they do not test Django's password storage.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
