"""``peer.toml`` in and out: load and validate, apply ``section.key=value`` overrides, print.

Types come from the dataclass annotations, so a new field needs no loader change. Unknown
sections and keys are errors (a typo must not silently fall back to a default), and relative
paths in a file are relative to that file's directory.
"""

from __future__ import annotations

import difflib
import json
import tomllib
import types
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from peer.config.sections import PeerConfig, config_error, fail
from protocol.errors import ConfigError

__all__ = ["apply_overrides", "config_from_dict", "config_to_dict", "load_config", "to_toml"]

_SECTIONS: dict[str, type[Any]] = get_type_hints(PeerConfig)


def _options(tp: object) -> tuple[object, ...]:
    """The members of a union annotation (``int | None`` -> (int, NoneType)), else (tp,)."""
    if get_origin(tp) in (Union, types.UnionType):
        return get_args(tp)
    return (tp,)


def _describe(tp: object) -> str:
    names = {str: "a string", int: "an int", float: "a number", bool: "true or false"}
    parts = []
    for option in _options(tp):
        if option is type(None):
            continue
        if get_origin(option) is Literal:
            parts.append("one of " + ", ".join(repr(v) for v in get_args(option)))
        elif option is Path:
            parts.append("a path (string)")
        else:
            parts.append(names.get(option, str(option)))  # type: ignore[call-overload]
    return " or ".join(parts)


def _coerce_one(value: object, tp: object) -> object:
    """``value`` as type ``tp``, or raise TypeError."""
    if get_origin(tp) is Literal:
        if isinstance(value, str) and value in get_args(tp):
            return value
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Path and isinstance(value, str | Path):
        return Path(value).expanduser()
    raise TypeError


def _coerce(value: object, tp: object, key: str) -> object:
    options = _options(tp)
    if value is None and type(None) in options:
        return None
    for option in options:
        try:
            return _coerce_one(value, option)
        except TypeError:
            continue
    raise config_error(key, value, _describe(tp))


def _unknown(key: str, known: Sequence[str]) -> ConfigError:
    name = key.rpartition(".")[2]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return ConfigError(f"{key}: unknown key; {hint}accepted: {', '.join(known)}")


def _section(name: str, table: object, base_dir: Path | None) -> object:
    cls = _SECTIONS[name]
    if not isinstance(table, Mapping):
        fail(name, table, f"a table [{name}]")
    hints = get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    for key in table:
        if key not in known:
            raise _unknown(f"{name}.{key}", known)
    kwargs: dict[str, object] = {}
    for f in fields(cls):
        key = f"{name}.{f.name}"
        if f.name in table:
            value = _coerce(table[f.name], hints[f.name], key)
            if isinstance(value, Path) and base_dir is not None and not value.is_absolute():
                value = base_dir / value
            kwargs[f.name] = value
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(f"{key}: missing; expected {_describe(hints[f.name])}")
    return cls(**kwargs)


def _check_files(config: PeerConfig) -> None:
    b, t = config.broker, config.topology
    for key, path in (
        ("broker.tls_ca", b.tls_ca),
        ("broker.tls_cert", b.tls_cert),
        ("broker.tls_key", b.tls_key),
        ("broker.password_file", b.password_file),
        ("topology.file", t.file),
        ("security.signing_key", config.security.signing_key),
        ("security.trust", config.security.trust),
    ):
        if path is not None and not path.is_file():
            fail(key, path, "an existing file")
    data = config.learning.data_path
    if data is not None and not data.is_dir():
        fail("learning.data_path", data, "an existing directory")


def config_from_dict(
    data: Mapping[str, object], *, base_dir: Path | None = None, check_files: bool = True
) -> PeerConfig:
    """Validate a TOML-shaped mapping into a PeerConfig; ``base_dir`` anchors relative paths;
    ``check_files=False`` leaves out the checks that named files exist (a config written here
    for another machine)."""
    for name in data:
        if name not in _SECTIONS:
            raise _unknown(name, list(_SECTIONS))
    for name in ("identity", "topology"):
        if name not in data:
            raise ConfigError(f"[{name}]: missing; expected a table (see docs/config.md)")
    sections = {name: _section(name, data.get(name, {}), base_dir) for name in _SECTIONS}
    config = PeerConfig(**sections)  # type: ignore[arg-type]
    if check_files:
        _check_files(config)
    return config


def load_config(path: Path) -> PeerConfig:
    """Read and validate ``peer.toml``; ConfigError names the file, the key and the problem."""
    try:
        with Path(path).open("rb") as stream:
            data = tomllib.load(stream)
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r}: cannot read it ({exc.strerror})") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {str(path)!r}: invalid TOML ({exc})") from exc
    return config_from_dict(data, base_dir=Path(path).parent)


def config_to_dict(config: PeerConfig) -> dict[str, dict[str, object]]:
    """TOML-shaped values (paths as strings; None kept, meaning unset)."""
    out: dict[str, dict[str, object]] = {}
    for name in _SECTIONS:
        section = getattr(config, name)
        out[name] = {
            f.name: str(v) if isinstance(v := getattr(section, f.name), Path) else v
            for f in fields(section)
        }
    return out


def _override_value(text: str, tp: object, key: str) -> object:
    if not text and type(None) in _options(tp):
        return None  # "key=" unsets an optional value
    try:
        parsed = tomllib.loads(f"v = {text}")["v"]
        _coerce(parsed, tp, key)
        return parsed
    except (tomllib.TOMLDecodeError, ConfigError):
        return text  # a bare word: the string itself (validated by the section)


def apply_overrides(config: PeerConfig, overrides: Sequence[str]) -> PeerConfig:
    """A copy of ``config`` with ``section.key=value`` items applied (values in TOML syntax,
    or bare strings; ``key=`` unsets an optional value)."""
    data = config_to_dict(config)
    for item in overrides:
        key, eq, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not eq or not dot:
            raise ConfigError(f"override {item!r}: expected section.key=value")
        if section not in _SECTIONS:
            raise _unknown(section, list(_SECTIONS))
        if name not in data[section]:
            raise _unknown(key.strip(), list(data[section]))
        tp = get_type_hints(_SECTIONS[section])[name]
        data[section][name] = _override_value(text.strip(), tp, key.strip())
    return config_from_dict(data)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    # JSON string escapes are TOML basic-string escapes, except that TOML also wants DEL escaped.
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


_SECRETS = frozenset({"broker.password", "privacy.seed"})
"""Keys printed only with ``show_secrets``: whoever knows the noise seed can remove the noise."""


def to_toml(config: PeerConfig, *, show_secrets: bool = False) -> str:
    """The effective config as TOML that :func:`load_config` reads back to an equal config."""
    lines: list[str] = []
    for section, values in config_to_dict(config).items():
        lines.append(f"[{section}]")
        for name, value in values.items():
            if value is None:
                continue
            if f"{section}.{name}" in _SECRETS and not show_secrets:
                lines.append(f"# {name} = (set; hidden)")
                continue
            lines.append(f"{name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)
