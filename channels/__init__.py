"""Channel adapters and their registry.

``load_channels(settings)`` builds one adapter per ``[channels.<alias>]`` table. The table's ``type``
names the adapter registered under the ``notifier.channels`` entry-point group
(``name = "package.module:Class"``): the adapters shipped here register there exactly as a
third-party package does (see pyproject.toml). Options are validated by the adapter's ``Options``
model; a bad or unknown key raises ConfigError naming ``channels.<alias>.<key>``. Once every alias
is built, each adapter's ``prepare`` receives the service's settings and the other adapters.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from pydantic import ValidationError

from channels.base import Channel, ChannelSetup
from notifier.config import Settings
from notifier.domain.errors import ConfigError

ENTRY_POINT_GROUP = "notifier.channels"


def adapter_class(name: str) -> type[Channel]:
    """The adapter class registered under ``name``; ConfigError when none is."""
    registered = {entry.name: entry.value for entry in entry_points(group=ENTRY_POINT_GROUP)}
    target = registered.get(name)
    if target is None:
        raise ConfigError(f"no channel adapter named {name!r}; known: {', '.join(sorted(registered))}")
    module_name, _, attribute = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attribute)
    if not (isinstance(cls, type) and issubclass(cls, Channel)):
        raise ConfigError(f"{target} is not a channel adapter")
    return cls


def load_channels(settings: Settings, shared: dict[str, object] | None = None) -> dict[str, Channel]:
    """One adapter per configured alias, options validated; nothing is opened yet. ``shared`` seeds the
    objects the adapters share (``ChannelSetup.shared``), e.g. token caches kept in the database."""
    adapters: dict[str, Channel] = {}
    for alias, config in settings.channels.items():
        try:
            cls = adapter_class(config.type)
        except ConfigError as exc:
            raise ConfigError(f"channels.{alias}.type: {exc}") from None
        try:
            options = cls.Options.model_validate(config.options)
        except ValidationError as exc:
            problems = [
                f"channels.{alias}.{'.'.join(str(p) for p in error['loc'])}: "
                + ("unknown option" if error["type"] == "extra_forbidden" else error["msg"])
                for error in exc.errors()
            ]
            raise ConfigError("invalid channel options:\n  " + "\n  ".join(problems)) from None
        adapters[alias] = cls(alias, options)
    setup = ChannelSetup(settings=settings, adapters=adapters, shared=dict(shared or {}))
    for alias, adapter in adapters.items():
        try:
            adapter.prepare(setup)
        except KeyError as exc:
            raise ConfigError(str(exc.args[0]) if exc.args else f"channels.{alias}: {exc}") from None
    return adapters


__all__ = ["Channel", "adapter_class", "load_channels"]
