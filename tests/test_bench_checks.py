"""The channel benchmarks' check of what the sink got (SMS, e-mail, WeChat): a send tried again after a timeout
(at least once, by design) passes; a lost message or a send the engine did not record as a try fails the run."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
import pytest

from bench import common, email, wechat
from bench.common import check_sends, migrate
from bench.population import populate
from bench.sinks import recipient, sink_process
from notifier.config import Settings


@pytest.mark.parametrize(
    ("got", "reached", "tries", "error"),
    [
        (20_000, 20_000, 20_000, None),  # each message once
        (20_182, 20_000, 20_182, None),  # 182 tries timed out and were sent again
        (20_182, 20_000, 20_200, None),  # 18 more tries never reached the sink (refused connections)
        (20_000, 19_999, 20_001, "messages for 19999 of 20000 residents"),  # one lost, one sent twice
        (19_999, 19_999, 20_000, "messages for 19999 of 20000 residents"),  # one lost
        (20_001, 20_000, 20_000, "more than the 20000 tries"),  # a duplicate no try explains
    ],
)
def test_a_retry_passes_a_loss_or_an_unexplained_duplicate_fails(
    got: int, reached: int, tries: int, error: str | None
) -> None:
    if error is None:
        check_sends(got, reached, 20_000, tries)
    else:
        with pytest.raises(RuntimeError, match=error):
            check_sends(got, reached, 20_000, tries)


@pytest.mark.parametrize(
    ("query", "to"),
    [
        ("username=bench&to=%2B8613900000001&text=x", "%2B8613900000001"),
        ("to=%2B8613900000002&text=x", "%2B8613900000002"),
        ("username=bench&text=a%26to%3D1&to=%2B8613900000003", "%2B8613900000003"),
        ("username=bench&text=x", ""),
    ],
)
def test_the_sink_tells_recipients_by_their_to(query: str, to: str) -> None:
    assert recipient(query) == to


# The e-mail and WeChat benchmarks check their engine rounds the same way. A round of COUNT messages runs
# against the real sink; then one more message reaches the sink (``extra``: as a send tried again would, or to
# someone not in the notice), recorded as a try of the first delivery or not (``tried``).
COUNT = 30
ROUND_CASES = [
    pytest.param("again", True, None, id="a-retried-send-passes"),
    pytest.param("again", False, f"more than the {COUNT} tries", id="a-send-no-try-explains-fails"),
    pytest.param("stranger", True, f"messages for {COUNT + 1} of {COUNT} residents", id="a-stranger-fails"),
]


def one_more(real: Callable[..., Awaitable[float]], send: Callable[[], Awaitable[None]], tried: bool) -> Any:
    """``engine_send_rate``, then one more message sent to the sink, and counted as a try of the first delivery
    when ``tried``."""

    async def engine_send_rate(settings: Settings, kind: str, expected: int) -> float:
        seconds = await real(settings, kind, expected)
        await send()
        if tried:
            path = settings.database.url.removeprefix("sqlite:///")
            with contextlib.closing(sqlite3.connect(path)) as conn, conn:
                conn.execute(
                    "UPDATE deliveries SET attempts = attempts + 1 WHERE id = (SELECT MIN(id) FROM deliveries)"
                )
        return seconds

    return engine_send_rate


async def check_round(run: Awaitable[float], error: str | None) -> None:
    if error is None:
        assert await run > 0
    else:
        with pytest.raises(RuntimeError, match=error):
            await run


@pytest.mark.parametrize(("extra", "tried", "error"), ROUND_CASES)
async def test_an_email_round_is_checked_against_the_recorded_tries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str, tried: bool, error: str | None
) -> None:
    with sink_process("smtp") as sink:
        to = email.address(1) if extra == "again" else "stranger@example.org"  # resident 1 has an address

        async def send() -> None:
            await aiosmtplib.send(email.prebuilt(), hostname=sink.host, port=sink.port, sender=email.SENDER,
                                  recipients=[to], start_tls=False)  # fmt: skip

        monkeypatch.setattr(common, "engine_send_rate", one_more(common.engine_send_rate, send, tried))
        await check_round(email.engine_rate(sink, tmp_path / "email.db", COUNT), error)


@pytest.mark.parametrize(("extra", "tried", "error"), ROUND_CASES)
async def test_a_wechat_round_is_checked_against_the_recorded_tries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str, tried: bool, error: str | None
) -> None:
    numbers = [i for i in range(1, 3 * COUNT + 1) if i % 3 == 2]  # the residents with an openid
    stranger = 3 * COUNT + 2
    path = tmp_path / "wechat.db"
    await migrate(path)
    populate(str(path), 3 * COUNT)
    with sink_process("wechat", followers=[wechat.openid(i) for i in (*numbers, stranger)]) as sink:

        async def send() -> None:
            grant = {"grant_type": "client_credential", "appid": wechat.APPID, "secret": wechat.SECRET}
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{sink.url}/cgi-bin/stable_token", json=grant) as response:
                    token = (await response.json())["access_token"]
                body = wechat.template_body(numbers[0] if extra == "again" else stranger, 99)
                async with session.post(
                    f"{sink.url}/cgi-bin/message/template/send",
                    params={"access_token": token},
                    data=body,
                    headers={"Content-Type": "application/json"},
                ) as response:
                    assert (await response.json())["errcode"] == 0  # fmt: skip

        monkeypatch.setattr(common, "engine_send_rate", one_more(common.engine_send_rate, send, tried))
        await check_round(wechat.engine_rate(sink, path, COUNT), error)
