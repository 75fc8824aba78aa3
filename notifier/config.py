"""Configuration: one TOML file validated by pydantic, every key overridable from the environment.

Lookup: ``--config FILE``, else ``$NOTIFIER_CONFIG``, else ``./config.toml``, else built-in defaults
(the ones ``config.example.toml`` documents). ``NOTIFIER_<SECTION>__<KEY>=value`` overrides a key;
``NOTIFIER_CHANNELS__<ALIAS>__<KEY>`` reaches into a channel table. Values from the environment are
parsed as TOML values when they parse (``8081``, ``true``, ``["a","b"]``), else taken as strings.

A wrong key or value raises ConfigError naming the key, where it came from (file and line, or the
environment variable) and what was expected.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, SecretStr, ValidationError, field_validator

from notifier.domain.enums import ChannelKind, Role, Severity
from notifier.domain.errors import ConfigError

ENV_PREFIX = "NOTIFIER_"
EXAMPLE_SIGNING_SECRET = "change-me-in-production"  # published in config.example.toml: anyone knows it
MIN_SIGNING_SECRET_LENGTH = 32

log = logging.getLogger(__name__)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str = Field("http://127.0.0.1:8080", description="base of links in messages")
    max_body_bytes: int = Field(1_048_576, ge=1024)
    timezone: str = "Asia/Shanghai"
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="reverse proxies whose X-Forwarded-For names the client (addresses or networks); empty: none",
    )


class DatabaseConfig(Section):
    url: str = "sqlite:///notifier.db"
    pool_size: int = Field(10, ge=1, le=500, description="PostgreSQL connections each process may open")

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not (value.startswith("sqlite:///") or value.startswith(("postgresql://", "postgres://"))):
            raise ValueError("expected sqlite:///path.db or postgresql://user@host/database")
        return value


class EngineConfig(Section):
    workers: int = Field(2, ge=0, le=64, description="delivery worker tasks per process")
    batch_size: int = Field(100, ge=1, le=5000)
    fanout_batch_size: int | None = Field(
        None, ge=100, le=50000, description="residents per fan-out transaction; unset: the database's own size"
    )
    lease_seconds: float = Field(60, gt=0)
    heartbeat_seconds: float = Field(
        2.0, gt=0, description="each process beats this often; its leases are taken back after 3 missed beats"
    )
    poll_interval: float = Field(0.5, gt=0)
    max_attempts: int = Field(5, ge=1, le=50)
    backoff_base: float = Field(2.0, gt=0)
    backoff_max: float = Field(900, gt=0)
    confirm_window: float = Field(0, ge=0, description="seconds to wait for a receipt before fallback; 0 off")
    inbox_dir: str = Field(
        "inbox", description="inbound opt-outs the database could not take at once wait here for housekeeping"
    )


class FeedbackConfig(Section):
    answer_within_hours: float = Field(
        72, gt=0, le=8760, description="a feedback item not answered this long after it came is flagged overdue"
    )
    form_per_hour: int = Field(5, ge=1, le=1000, description="public feedback forms taken per client address an hour")
    keep_days: int = Field(
        730, ge=30, le=36500,
        description="an item's text, contact, resident and answer are erased this many days after it was closed "
        "(after it came, for an item never closed)",
    )


class SecurityConfig(Section):
    signing_secret: SecretStr = Field(
        SecretStr(EXAMPLE_SIGNING_SECRET),
        description="HMAC key for signed links; the service refuses to start with this example value outside --demo",
    )


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


ApproverCount = Annotated[int, Field(ge=1, le=5)]


class DepartmentApproval(Section):
    """``[approval.departments.<code>]``: the department's own rule, more specific than the county-wide one."""

    approvers: ApproverCount | None = Field(None, description="distinct approvers each of its notices needs")
    severity: dict[Severity, ApproverCount] = Field(default_factory=dict, description="per severity")


DEFAULT_DUE_MINUTES = {
    Severity.INFO: 1440,
    Severity.MINOR: 1440,
    Severity.MODERATE: 240,
    Severity.SEVERE: 60,
    Severity.EXTREME: 30,
}


class ApprovalConfig(Section):
    """Who must approve a notice before it is sent, and who may send an extreme alert first.

    The number of distinct approvers (never the author) a notice needs is the most specific rule that names
    it: its department's rule for its severity, else the county-wide rule for its severity, else its
    department's ``approvers``, else ``approvers``.
    """

    approvers: ApproverCount = Field(1, description="distinct approvers every notice needs by default")
    severity: dict[Severity, ApproverCount] = Field(default_factory=dict, description="per severity, all departments")
    departments: dict[str, DepartmentApproval] = Field(default_factory=dict)
    override_roles: list[Role] = Field(
        default_factory=list,
        description="roles that may send an extreme alert at once, to be approved after the fact (empty: nobody)",
    )
    due_minutes: dict[Severity, Annotated[int, Field(ge=1, le=100_000)]] = Field(
        default_factory=lambda: dict(DEFAULT_DUE_MINUTES),
        description="minutes from submission (or from an override) within which approval counts as on time",
    )

    def required(self, department: str, severity: Severity) -> int:
        own = self.departments.get(department)
        if own is not None and severity in own.severity:
            return own.severity[severity]
        if severity in self.severity:
            return self.severity[severity]
        if own is not None and own.approvers is not None:
            return own.approvers
        return self.approvers

    def due(self, severity: Severity) -> int:
        """Minutes within which a notice of this severity is to be approved."""
        return self.due_minutes.get(severity, DEFAULT_DUE_MINUTES[severity])


class ChannelConfig(BaseModel):
    """One ``[channels.<alias>]`` table; adapter options are validated by the adapter's own model."""

    model_config = ConfigDict(extra="allow")

    kind: ChannelKind
    type: str = Field(description="adapter name registered under the notifier.channels entry points")
    order: int = Field(0, description="aliases of one kind are tried in ascending order")
    rate_per_second: float | None = Field(None, gt=0)
    rate_per_minute: float | None = Field(None, gt=0)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Settings(Section):
    server: ServerConfig = ServerConfig()
    database: DatabaseConfig = DatabaseConfig()
    engine: EngineConfig = EngineConfig()
    security: SecurityConfig = SecurityConfig()
    feedback: FeedbackConfig = FeedbackConfig()
    logging: LoggingConfig = LoggingConfig()
    approval: ApprovalConfig = ApprovalConfig()
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)

    @field_validator("channels")
    @classmethod
    def _aliases(cls, value: dict[str, ChannelConfig]) -> dict[str, ChannelConfig]:
        for alias in value:
            if not re.fullmatch(r"[a-z][a-z0-9_-]{0,39}", alias):
                raise ValueError(f"channel alias {alias!r}: use lower-case letters, digits, - and _")
        return value

    def failover_owners(self, alias: str) -> list[str]:
        """The failover aliases that send through ``alias`` (their deliveries carry their own alias)."""
        return [
            name for name, channel in self.channels.items()
            if channel.type == "failover" and alias in (channel.options.get("aliases") or [])
        ]  # fmt: skip

    def failover_members(self, alias: str) -> list[str]:
        """The aliases a failover alias sends through; none for another alias."""
        channel = self.channels.get(alias)
        if channel is None or channel.type != "failover":
            return []
        return [str(member) for member in channel.options.get("aliases") or []]

    @property
    def sqlite_path(self) -> str | None:
        url = self.database.url
        return url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None


def signing_secret_problem(settings: Settings) -> str | None:
    """What makes the signing secret guessable (None when it is fine): signed links could be forged with it."""
    secret = settings.security.signing_secret.get_secret_value()
    if not secret:
        return "is empty"
    if secret == EXAMPLE_SIGNING_SECRET:
        return "is the example value from config.example.toml"
    if len(secret) < MIN_SIGNING_SECRET_LENGTH:
        return f"is shorter than {MIN_SIGNING_SECRET_LENGTH} characters"
    return None


def require_signing_secret(settings: Settings, *, demo: bool = False) -> None:
    """Refuse a secret that would let anyone forge unsubscribe links (the demo may keep the example one).

    Raises ConfigError with one line naming the setting and its environment variable.
    """
    problem = signing_secret_problem(settings)
    if problem is None:
        return
    message = (
        f"[security] signing_secret {problem}: anyone could forge unsubscribe links; set a random value of "
        f"at least {MIN_SIGNING_SECRET_LENGTH} characters in the config file or in "
        f"{ENV_PREFIX}SECURITY__SIGNING_SECRET (e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
    )
    if demo and settings.security.signing_secret.get_secret_value():
        log.warning("demo mode: %s", message)
        return
    raise ConfigError(message)


def config_path(explicit: str | os.PathLike[str] | None) -> Path | None:
    if explicit:
        return Path(explicit)
    if os.environ.get("NOTIFIER_CONFIG"):
        return Path(os.environ["NOTIFIER_CONFIG"])
    local = Path("config.toml")
    return local if local.exists() else None


def load_settings(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, merge and validate the configuration; raise ConfigError on any problem."""
    environ = os.environ if environ is None else environ
    file = config_path(path)
    text = ""
    data: dict[str, Any] = {}
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except FileNotFoundError:
            raise ConfigError(f"config file {file} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    sources: dict[tuple[str, ...], str] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name or name == "NOTIFIER_CONFIG":
            continue
        keys = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        _set_path(data, keys, _parse_env_value(raw))
        sources[keys] = f"environment variable {name}"
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, file, text, sources)) from None


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _set_path(data: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    node = data
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[keys[-1]] = value


def _describe(exc: ValidationError, file: Path | None, text: str, sources: dict[tuple[str, ...], str]) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        key = ".".join(loc)
        where = sources.get(loc) or _locate(file, text, loc)
        expected = error["msg"]
        if error["type"] == "extra_forbidden":
            expected = "unknown key (see config.example.toml for the keys there are)"
        lines.append(f"{key} ({where}): {expected}")
    if len(lines) == 1:
        return f"invalid configuration: {lines[0]}"
    return "\n  ".join(["invalid configuration:", *lines])


def _locate(file: Path | None, text: str, loc: tuple[str, ...]) -> str:
    """Best-effort 'file:line' of a key: the key's line inside its [table], else the table's line."""
    if file is None:
        return "built-in default"
    table, key = loc[:-1], loc[-1]
    header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(re.escape(p) for p in table) + r"\s*\]\s*$")
    key_line = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
    in_table = not table
    table_line = None
    for number, line in enumerate(text.splitlines(), 1):
        if re.match(r"^\s*\[", line):
            in_table = bool(table) and bool(header.match(line))
            if in_table:
                table_line = number
            continue
        if in_table and key_line.match(line):
            return f"{file}:{number}"
    return f"{file}:{table_line}" if table_line else str(file)
