"""Exception hierarchy of sparkdedup.

Every error is also a builtin (ValueError, ImportError) so callers that do not know sparkdedup
can still catch it. Messages name the parameter, column or path, the value, and what is allowed.
"""

from __future__ import annotations


class DedupError(Exception):
    """Base class of every sparkdedup error."""


class ConfigError(DedupError, ValueError):
    """An invalid parameter value (names the parameter, the value and what is allowed)."""


class SchemaError(DedupError, ValueError):
    """A missing column, a column of the wrong type, or duplicate ids."""


class InputError(DedupError, ValueError):
    """An input path that does not exist or cannot be read in the requested format."""


class BackendUnavailableError(DedupError, ImportError):
    """A GPU library, GPU resource or the JVM jar is missing; the message says how to install it."""
