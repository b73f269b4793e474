"""Errors raised while loading or generating task data.

::

    RumorError
    └── ConfigError
        └── DataError            a data file is unreadable, malformed or inconsistent (exit 2)
            └── DatasetMissing   a dataset's files are not where they were looked for (exit 2)

Both are bad input, so the CLI dispatcher reports them in one line and exits with status 2.
Messages name the file and the problem, and ``DatasetMissing`` says how to install the data.
"""

from __future__ import annotations

from protocol.errors import ConfigError

__all__ = ["DataError", "DatasetMissing"]


class DataError(ConfigError):
    """A data file is unreadable, malformed, or disagrees with its companion file."""


class DatasetMissing(DataError):
    """A dataset's files are missing; the message says how to install them."""
