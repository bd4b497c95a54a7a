"""Where governance state lives: one protocol, and the backends that implement it.

Open a store by URL with `open_store`:

- ``memory://``: in this process's memory (tests, notebooks).
- ``sqlite:///relative/path.db``: a SQLite file relative to the current directory.
- ``sqlite:////absolute/path.db``: a SQLite file at an absolute path (four slashes).
- ``postgresql://user@host:5432/database``: a PostgreSQL database shared by many hosts
  (``pip install 'ada-governance[postgres]'``), with options in the query:
  ``?schema=governance&pool_min=1&pool_max=10&pool_timeout=10``.

`default_store_url` names the store used when none is given.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import Store, StoreError
from .memory import MemoryStore
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .postgres import PostgresStore as PostgresStore

# `PostgresStore` is imported on first use (see `__getattr__`), so that the package
# imports without psycopg; it is not in `__all__` for the same reason.
__all__ = [
    "MemoryStore",
    "SQLiteStore",
    "Store",
    "StoreError",
    "default_store_url",
    "open_store",
]

_STORE_ENV_VAR = "ADA_GOVERNANCE_STORE"

_SQLITE_PREFIX = "sqlite:///"
_ACCEPTED = (
    "'memory://', 'sqlite:///relative/path.db', 'sqlite:////absolute/path.db'"
    " (three slashes before a relative path, four before an absolute one)"
    " or 'postgresql://user@host:5432/database'"
)
_POSTGRES_SCHEMES = ("postgresql", "postgres")
_POSTGRES_EXTRA = "pip install 'ada-governance[postgres]'"


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        from .postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(url: str) -> Store:
    """Open the store a URL names.

    Args:
        url: ``memory://``, ``sqlite:///relative/path.db`` (relative to the current
            directory), ``sqlite:////absolute/path.db``, as SQLAlchemy writes them, or
            ``postgresql://user:password@host:5432/database`` (also ``postgres://`` and
            ``postgresql+psycopg://``) with libpq parameters and the store's options
            (``schema``, ``pool_min``, ``pool_max``, ``pool_timeout``) in the query.

    Returns:
        The store. Nothing is opened or connected until the store's first call.

    Raises:
        StoreError: A PostgreSQL URL, without psycopg installed
            (``pip install 'ada-governance[postgres]'``).
        ValueError: The URL is not one of the accepted forms.
    """
    if url == "memory://":
        return MemoryStore(url)
    if url.startswith(_SQLITE_PREFIX):
        path = url[len(_SQLITE_PREFIX) :]
        if "?" in path:
            raise ValueError(
                f"SQLite store URLs take no query parameters: {url!r}; accepted forms: {_ACCEPTED}"
            )
        if not path or path.endswith("/"):
            raise ValueError(f"the SQLite store URL {url!r} names no file; use {_ACCEPTED}")
        return SQLiteStore(path, url=url)
    scheme = url.partition("://")[0].partition("+")[0].lower()
    if scheme in _POSTGRES_SCHEMES:
        try:
            from .postgres import PostgresStore
        except ImportError as error:
            raise StoreError(
                f"the PostgreSQL store needs psycopg 3 and psycopg-pool: {_POSTGRES_EXTRA}"
            ) from error
        return PostgresStore(url)
    raise ValueError(f"unsupported store URL {url!r}; use {_ACCEPTED}")


def default_store_url() -> str:
    """Return the URL of the store used when none is given.

    Returns:
        ``$ADA_GOVERNANCE_STORE`` if set, otherwise a SQLite file
        ``ada_governance/governance.db`` in the user's state folder
        (``$XDG_STATE_HOME``, or ``~/.local/state``).
    """
    url = os.environ.get(_STORE_ENV_VAR)
    if url:
        return url
    # The XDG spec: an unset, empty or relative XDG_STATE_HOME means the default.
    state_home = os.environ.get("XDG_STATE_HOME", "")
    state_dir = Path(state_home) if os.path.isabs(state_home) else Path.home() / ".local/state"
    return f"{_SQLITE_PREFIX}{(state_dir / 'ada_governance' / 'governance.db').as_posix()}"
