"""The PostgreSQL test server: where it is, and how to skip (or fail) without it."""

from __future__ import annotations

import os
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

PG_DSN_ENV = "ADA_GOVERNANCE_TEST_PG_DSN"
REQUIRE_PG_ENV = "ADA_GOVERNANCE_REQUIRE_PG"
HOW_TO_RUN = (
    f"set {PG_DSN_ENV}=postgresql://postgres@127.0.0.1:5432/test (a server the tests may"
    " create and drop schemas in) and install the extra: pip install -e '.[dev]'"
)


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_PG_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_PG_ENV}=1 forbids skipping; {HOW_TO_RUN}")
    pytest.skip(f"{reason}; to run the PostgreSQL tests, {HOW_TO_RUN}")


def require_psycopg() -> None:
    """Skip (fail with ``ADA_GOVERNANCE_REQUIRE_PG=1``) without psycopg and psycopg-pool."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        _unavailable("psycopg or psycopg-pool is not installed")


def pg_dsn() -> str:
    """The test server's DSN, or skip (fail with ``ADA_GOVERNANCE_REQUIRE_PG=1``)."""
    require_psycopg()
    dsn = os.environ.get(PG_DSN_ENV, "")
    if not dsn:
        _unavailable(f"{PG_DSN_ENV} is not set")
    return dsn


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` set in its query (replacing any of the same name)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def with_host(url: str, host: str, port: int) -> str:
    """``url`` pointed at ``host:port``, with the same user, database and query."""
    parts = urlsplit(url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}:{port}"))


def new_schema_name() -> str:
    return f"ada_test_{uuid.uuid4().hex[:16]}"


def drop_schema(dsn: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
