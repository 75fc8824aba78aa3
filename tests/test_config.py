"""Configuration: defaults, file, environment overrides and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.config import load_settings
from notifier.domain.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_example_config_is_valid_and_documents_every_key() -> None:
    settings = load_settings(ROOT / "config.example.toml", environ={})
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for section in ("server", "database", "engine", "security", "feedback", "logging"):
        model = getattr(settings, section)
        for key in type(model).model_fields:
            assert f"\n{key} = " in text or f"\n# {key} = " in text, f"{section}.{key} is not documented"
    assert {c.kind.value for c in settings.channels.values()} >= {"sms", "email", "wechat", "wecom"}


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[server]\nport = 9000\n[channels.sms]\nkind = "sms"\ntype = "outbox"\n', encoding="utf-8")
    env = {"NOTIFIER_SERVER__PORT": "8081", "NOTIFIER_CHANNELS__SMS__RATE_PER_SECOND": "5"}
    settings = load_settings(path, environ=env)
    assert settings.server.port == 8081
    assert settings.channels["sms"].rate_per_second == 5


def test_wrong_key_names_key_line_and_expectation(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[server]\nhost = "0.0.0.0"\nprot = 8080\n\n[engine]\nworkers = "many"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    message = str(info.value)
    assert f"server.prot ({path}:3): unknown key" in message
    assert f"engine.workers ({path}:6): Input should be a valid integer" in message


def test_wrong_env_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"server.port \(environment variable NOTIFIER_SERVER__PORT\)"):
        load_settings(None, environ={"NOTIFIER_SERVER__PORT": "eighty"})


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, environ={})


def test_commented_gateway_examples_are_valid_channel_config(tmp_path: Path) -> None:
    from channels import load_channels

    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    _, _, examples = text.partition("# Real gateways.")
    lines = [line[2:] for line in examples.splitlines() if line.startswith("# ") and ("=" in line or "[" in line)]
    uncommented = tmp_path / "all-gateways.toml"
    uncommented.write_text(text + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    settings = load_settings(uncommented, environ={})
    assert {"sms-kannel", "sms-aliyun", "sms-tencent", "sms-failover", "email-smtp", "wechat-mp", "board-print"} <= set(
        settings.channels
    )
    adapters = load_channels(settings)
    assert set(adapters) == set(settings.channels)
