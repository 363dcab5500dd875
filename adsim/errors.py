"""User-facing error types.

Every error caused by *user input* (a scenario file, a log table, a CLI flag, a request) is an
:class:`AdsimError`. Its message names the thing that is wrong (field, column, row, flag) and what
would fix it. The CLI turns these into one line on stderr and exit code 2; the server into HTTP 422.
Anything else escaping is a bug in adsim.
"""

from __future__ import annotations


class AdsimError(ValueError):
    """Bad user input. The message is meant to be shown to the user as it is."""


class ConfigError(AdsimError):
    """A scenario or training config is missing, unreadable or invalid."""


class DataError(AdsimError):
    """A data file or log table is missing, unreadable or has invalid contents."""
