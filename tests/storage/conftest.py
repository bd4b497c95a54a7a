"""PostgreSQL for the storage tests: a server named by ``ADA_GOVERNANCE_TEST_PG_DSN``, and a
schema of its own for each test, dropped afterwards.

Without the variable the PostgreSQL tests skip, saying how to run them; with
``ADA_GOVERNANCE_REQUIRE_PG=1`` (as ``.ci/run`` sets) they fail instead of skipping.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _pg import drop_schema, new_schema_name, pg_dsn, with_query


@pytest.fixture
def pg_admin_dsn() -> str:
    """The test server's DSN (for admin connections), or skip."""
    return pg_dsn()


@pytest.fixture
def pg_schema(pg_admin_dsn: str) -> Iterator[str]:
    """A schema name of this test's own, dropped (with all it holds) afterwards."""
    schema = new_schema_name()
    yield schema
    drop_schema(pg_admin_dsn, schema)


@pytest.fixture
def pg_url(pg_admin_dsn: str, pg_schema: str) -> str:
    """A store URL whose tables live in this test's own schema."""
    return with_query(pg_admin_dsn, schema=pg_schema)
