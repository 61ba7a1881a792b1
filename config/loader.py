"""Load and validate a wireshift YAML config.

``${VAR}`` and ``${VAR:-default}`` in string values are replaced from the environment before
validation (so the default config can read ``WIRESHIFT_EMULATOR_URL``). Errors are raised as
``ConfigError`` whose message names the file, the key path and the rule broken, e.g.
``config/x.yaml: backends.1.backend_prefix: backend_prefix 'a/b' must not contain '/' or ':'``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from config.models import WireshiftConfig

#: The config used when no ``wireshift_config`` option is given.
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent / "wireshift.yaml"


class ConfigError(Exception):
    """An invalid or unreadable config file; the message is ready to show a user."""


def _expand(value: Any, env: dict[str, str]) -> Any:
    """Expand ``${VAR}`` / ``${VAR:-default}`` in every string of a parsed YAML tree."""
    if isinstance(value, str):
        return _expand_str(value, env)
    if isinstance(value, list):
        return [_expand(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, env) for k, v in value.items()}
    return value


def _expand_str(text: str, env: dict[str, str]) -> str:
    out: list[str] = []
    pos = 0
    while (start := text.find("${", pos)) >= 0:
        end = text.find("}", start)
        if end < 0:
            break
        name, _, default = text[start + 2 : end].partition(":-")
        out.append(text[pos:start])
        out.append(env.get(name) or default)
        pos = end + 1
    out.append(text[pos:])
    return "".join(out)


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {loc}: {msg}")
    return "\n".join(lines)


def parse_config(data: Any, path: Path, env: dict[str, str] | None = None) -> WireshiftConfig:
    """Validate an already-parsed YAML tree. Raises ``ConfigError``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: (top level): expected a mapping with 'backends' and 'routing'")
    expanded = _expand(data, dict(os.environ) if env is None else env)
    try:
        return WireshiftConfig.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(_format_errors(path, exc)) from None


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> WireshiftConfig:
    """Read, expand and validate the config at ``path`` (default ``DEFAULT_CONFIG_PATH``).

    Raises ``ConfigError`` for a missing file, bad YAML or a schema violation.
    """
    file = Path(path) if path else DEFAULT_CONFIG_PATH
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: invalid YAML: {exc}") from None
    return parse_config(data, file, env)
