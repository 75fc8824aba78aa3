"""What the service writes to its log: no key, token or phone number, and one line per record whatever a
request carries (control bytes, ``%0A`` in a path or a receipt id)."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from channels.kannel import dlr_signature
from notifier.logs import LOG_FORMAT, ScrubbingRecordFactory, format_exception, install_scrubbing, scrub
from tests.conftest import Api

API_KEY = "ntf_0123456789ab_" + "S3cretKeyMaterial-abcdefghijklmnopqrstuvwxyz"
HOOK_TOKEN = "hook-tok-7d2f9a41c0b3"
FORGED = "FORGED-RECORD"
FORGED_ID = f"d1\n{FORGED}"  # a receipt id with a line feed, signed as the adapter would

CONFIG = """\
[server]
host = "127.0.0.1"
port = {port}

[database]
url = "sqlite:///{dir}/notifier.db"

[engine]
workers = 0

[security]
signing_secret = "a-random-signing-secret-for-this-test-only-0f9e8d7c"

[logging]
level = "DEBUG"

[channels.kannel]
kind = "sms"
type = "kannel"
username = "tester"
password = "kannel-password-91c2"
hook_token = "{token}"
"""

REQUESTS = [
    # aiohttp refuses a header ending in a control byte and logs the raw header line
    f"GET /v1/notices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\x01\r\n\r\n".encode(),
    f"GET /hooks/kannel/dlr?alias=kannel&token={HOOK_TOKEN}&id=d1&type=1 HTTP/1.1\r\nHost: x\r\nX-A: b\x7f\r\n\r\n"
    .encode(),
    # a line feed in a path and in a receipt id, percent-encoded
    f"GET /v1/notices/1%0A{FORGED}%0D HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
    f"GET /hooks/kannel/dlr?alias=kannel&id=d1%0A{FORGED}&type=1&sig={dlr_signature(HOOK_TOKEN, 'kannel', FORGED_ID)}"
    " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
    f"GET /hooks/kannel/dlr?alias=kannel&token=wrong%0A{FORGED} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    .encode(),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def exchange(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answer = await reader.read(65536)
    writer.close()
    await writer.wait_closed()
    return answer


async def wait_for_port(port: int, process: asyncio.subprocess.Process) -> None:
    for _ in range(1200):  # bounded (a minute): a service that never listens fails the test
        assert process.returncode is None, "the service exited"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError("the service never listened")


async def test_served_log_carries_no_key_or_token_and_no_forged_line(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(port=port, dir=tmp_path, token=HOOK_TOKEN), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "notifier", "serve", "--config", str(config),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_for_port(port, process)
        answers = [await exchange(port, raw) for raw in REQUESTS]
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    log = err.decode("utf-8", errors="replace")

    assert [answer.split(b" ", 2)[1][:1] for answer in answers] == [b"4", b"4", b"4", b"2", b"4"]
    assert "bad request refused with 400 (BadHttpMessage: Invalid header value char)" in log  # aiohttp's refusal ...
    assert API_KEY[17:] not in log and HOOK_TOKEN not in log  # ... without the key or the token
    assert "Authorization:" not in log  # nor the header line it quoted
    forged = [line for line in log.splitlines() if FORGED in line]
    assert any(" aiohttp.access: GET /v1/notices/1\\n" + FORGED in line for line in forged)
    assert any(" notifier.hooks: kannel DLR d1\\n" + FORGED in line for line in forged)
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ", line) for line in forged)  # no line of its own


RESIDENT, PHONE = "Xiuying", "13912345678"
SEARCH = f"/console/residents?name=Wang%20{RESIDENT}&phone={PHONE}"
UNPARSABLE = {  # what aiohttp refuses before any handler runs, each carrying a resident's name and phone
    "a request line over 8190 bytes": f"GET {SEARCH}&area={'3' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n",
    "a header over 8190 bytes": f"GET / HTTP/1.1\r\nHost: x\r\nReferer: {SEARCH}&area={'3' * 9000}\r\n\r\n",
    "a control byte in a header": f"GET / HTTP/1.1\r\nHost: x\r\nReferer: {SEARCH}\x01\r\n\r\n",
    "an invalid method": f"G@T {SEARCH} HTTP/1.1\r\nHost: x\r\n\r\n",
    "an invalid version": f"GET {SEARCH} HTTP/9.Q\r\nHost: x\r\n\r\n",
}


@pytest.mark.parametrize("raw", UNPARSABLE.values(), ids=UNPARSABLE.keys())
async def test_a_request_aiohttp_cannot_parse_is_logged_without_what_it_carried(
    api: Api, caplog: pytest.LogCaptureFixture, raw: str
) -> None:
    """aiohttp's parser errors quote the request line or header line (a console search's query string); the
    log keeps that a bad request came, and why, without the bytes."""
    caplog.set_level(logging.DEBUG)  # an invalid method is logged at DEBUG
    before = logging.getLogRecordFactory()
    install_scrubbing()  # as the service runs: the record factory writes the traceback's text at once
    try:
        answer = await exchange(int(api.base.rsplit(":", 1)[1]), raw.encode())
    finally:
        logging.setLogRecordFactory(before)
    assert answer.startswith(b"HTTP/1.0 400 "), answer[:100]  # aiohttp logs the refusal before it answers
    assert RESIDENT not in caplog.text and PHONE not in caplog.text and "name=" not in caplog.text
    refusals = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [r.getMessage().split(": ", 1)[1][:30] for r in refusals] == ["bad request refused with 400 ("]


def test_scrub_redacts_credentials_and_phones_and_escapes_controls() -> None:
    text = (
        "Authorization: Bearer abcDEF123456 url=/x?token=t0k3n&key=k3y&signature=s1g&a=1 "
        "X-Api-Key: hunter2 phone +8613912345678 or 13912345678 "
        "nul\x00 esc\x1b[31m cr\r lf\n c1\x85 bidi\u202e zero\u200b sep\u2028 del\x7f"
    )
    cleaned = scrub(text)
    for secret in ("abcDEF123456", "t0k3n", "k3y", "s1g", "hunter2", "8613912345678", "13912345678"):
        assert secret not in cleaned
    assert "a=1" in cleaned and "+86139****5678" in cleaned and "Bearer ***" in cleaned
    assert scrub(f"key {API_KEY} in a message") == "key ntf_0123456789ab_*** in a message"
    assert "\\x00" in cleaned and "\\x1b[31m" in cleaned and "\\r" in cleaned and "\\n" in cleaned
    assert "\\x85" in cleaned and "\\u202e" in cleaned and "\\u200b" in cleaned and "\\u2028" in cleaned
    assert cleaned.isprintable()


@pytest.mark.parametrize(
    ("written", "masked"),
    [  # as residents and clerks write numbers (a publicity list's free text was masked so, a log line was not)
        ("from 139 1234 5678", "from 139****5678"),
        ("from 139-1234-5678.", "from 139****5678."),
        ("from +86 139-1234-5678", "from +86 139****5678"),
        ("from 0086 139 1234 5678", "from 0086 139****5678"),
        ("from １３９１２３４５６７８", "from １３９****５６７８"),  # full-width digits
    ],
)
def test_scrub_masks_a_phone_however_it_is_written(written: str, masked: str) -> None:
    assert scrub(written) == masked


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("roster row 7: 11010519491231002X unmatched", "roster row 7: 110105********002X unmatched"),
        ("id=11010519491231002x;", "id=110105********002x;"),
        ("370725199001011239 and 370725199001011239", "370725********1239 and 370725********1239"),
        # long numbers that are no identity number stay as they are: a wrong check character, no birth date
        ("job 110105194912310021 done", "job 110105194912310021 done"),
        ("trace 123456789012345678", "trace 123456789012345678"),
    ],
)
def test_scrub_masks_an_identity_number_and_leaves_other_long_numbers(written: str, masked: str) -> None:
    assert scrub(written) == masked


def test_exception_text_is_scrubbed_and_each_message_one_line() -> None:
    try:
        try:
            raise KeyError(f"lookup of {API_KEY}")
        except KeyError as inner:
            raise ValueError(f"bad\n{FORGED} token=abc") from inner
    except ValueError as exc:
        text = format_exception(exc)
    assert API_KEY[17:] not in text and "token=abc" not in text
    assert "The above exception was the direct cause of the following exception:" in text
    assert not any(line.startswith(FORGED) for line in text.splitlines())
    assert f"ValueError: bad\\n{FORGED} token=***" in text.splitlines()


@pytest.fixture
def written() -> Iterator[io.StringIO]:
    """What a handler with the service's format writes, with the record factory the service installs."""
    before, stream = logging.getLogRecordFactory(), io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger("tests.log_safety")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    install_scrubbing()
    try:
        yield stream
    finally:
        logging.setLogRecordFactory(before)
        logger.removeHandler(handler)


def test_every_record_is_scrubbed_once_installed(written: io.StringIO) -> None:
    log = logging.getLogger("tests.log_safety")
    log.warning("receipt %s from %s", f"d1\n{FORGED}", "+8613912345678")
    try:
        raise RuntimeError(f"with {API_KEY}\n{FORGED}")
    except RuntimeError:
        log.exception("failed for Bearer %s", API_KEY)
    text = written.getvalue()
    assert API_KEY[17:] not in text and "8613912345678" not in text
    assert not any(line.startswith(FORGED) for line in text.splitlines())
    assert "Traceback (most recent call last):" in text  # the traceback is still there


def test_installing_twice_wraps_once() -> None:
    before = logging.getLogRecordFactory()
    try:
        install_scrubbing()
        once = logging.getLogRecordFactory()
        install_scrubbing()
        assert logging.getLogRecordFactory() is once and isinstance(once, ScrubbingRecordFactory)
    finally:
        logging.setLogRecordFactory(before)
