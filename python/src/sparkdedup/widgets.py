"""Notebook parameters as Databricks widgets.

The notebooks keep their parameters in one cell (papermill's convention, which the tests and
Jupyter use). On Databricks, `apply_widgets` turns each of them into a text widget at the top of
the notebook, holding the cell's value until someone changes it, and reads the widgets back
into the notebook's variables, converted to the type of the cell's value.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping, Sequence
from typing import Any

from sparkdedup import redact
from sparkdedup.errors import ConfigError


def _convert(name: str, text: str, default: Any) -> Any:
    text = text.strip()
    if isinstance(default, bool):
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no", ""):
            return False
        raise ConfigError(f"widget {name!r} must be true or false, got {text!r}")
    if default is None or isinstance(default, str):
        return (None if default is None else "") if text in ("", "None") else text
    try:
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, (dict, list)):
            value = json.loads(text) if text else type(default)()
            if not isinstance(value, type(default)):
                raise ValueError
            return value
    except ValueError as err:
        if isinstance(default, (dict, list)):  # settings may hold a credential: not shown
            raise ConfigError(
                f"widget {name!r} must be JSON of a {type(default).__name__} like "
                f"{json.dumps(default)}; its text is not (not shown, it may hold credentials)"
            ) from err
        raise ConfigError(
            f"widget {name!r} must be {type(default).__name__} like {default!r}, got "
            f"{redact.uri(text)!r}"
        ) from err
    return text


def _shown(default: Any) -> str:
    if default is None:
        return ""
    if isinstance(default, (dict, list)):
        return json.dumps(default)
    return str(default)


def apply_widgets(
    namespace: MutableMapping[str, Any], names: Sequence[str], dbutils: Any
) -> dict[str, Any]:
    """Create a text widget per parameter in `names` (default: its value in `namespace`), read
    them all back into `namespace`, and return the parameters whose value changed, as the
    notebook prints them: the values of credentials in a dict (``SPARK_CONF``) redacted
    (`redact.options`), passwords and tokens in a URI (``SPARK_REMOTE``, a path) starred.

    Raises ConfigError naming the widget when a value does not convert to its parameter's type.
    """
    changed = {}
    for name in names:
        default = namespace[name]
        dbutils.widgets.text(name, _shown(default))
        value = _convert(name, dbutils.widgets.get(name), default)
        if value != default:
            changed[name] = (
                redact.options(None, value)
                if isinstance(value, dict)
                else redact.uri(value)
                if isinstance(value, str)
                else value
            )
        namespace[name] = value
    return changed
