"""The result and message types of the channel contract (``channels.base``): frozen dataclasses, two of them
(one per message sent) with the cheaper ``__init__`` of ``init_into_dict``, which must take the fields as the
dataclass's would and leave the types as frozen, comparable and copyable as before."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from collections.abc import Callable

import pytest

from channels.base import OutboundMessage, Sent, init_into_dict


@pytest.mark.parametrize("cls", [OutboundMessage, Sent])
def test_the_init_takes_the_fields_in_order_with_their_defaults(cls: type) -> None:
    parameters = list(inspect.signature(cls).parameters.values())
    fields = dataclasses.fields(cls)
    assert [p.name for p in parameters] == [f.name for f in fields]
    for parameter, field in zip(parameters, fields, strict=True):
        expected = inspect.Parameter.empty if field.default is dataclasses.MISSING else field.default
        assert parameter.default == expected, field.name
        assert parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"


def test_a_message_is_frozen_and_compares_by_its_fields() -> None:
    message = OutboundMessage(delivery_id=1, notice_id=2, channel="sms", alias="sms", recipient="+8613900000001",
                              text="t", idempotency_key="n2-s1-sms", priority=3, resend=1)  # fmt: skip
    assert vars(message) == {
        "delivery_id": 1, "notice_id": 2, "channel": "sms", "alias": "sms", "recipient": "+8613900000001",
        "text": "t", "idempotency_key": "n2-s1-sms", "subject": None, "html": None, "priority": 3,
        "confirm_url": None, "resend": 1,
    }  # fmt: skip
    assert OutboundMessage(1, 2, "sms", "sms", "+8613900000001", "t", "n2-s1-sms", None, None, 3, None, 1) == message
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.text = "changed"  # type: ignore[misc]
    again = dataclasses.replace(message, text="t")
    assert again == message and hash(again) == hash(message) and again is not message
    assert dataclasses.replace(message, resend=0) != message
    assert pickle.loads(pickle.dumps(message)) == message
    assert repr(message).startswith("OutboundMessage(delivery_id=1, notice_id=2, ")
    with pytest.raises(TypeError, match="idempotency_key"):
        OutboundMessage(1, 2, "sms", "sms", "+8613900000001", "t")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="sender"):
        OutboundMessage(1, 2, "sms", "sms", "+8613900000001", "t", "k", sender="x")  # type: ignore[call-arg]


def test_sent_is_frozen_and_compares_by_its_id() -> None:
    sent = Sent("d1")
    assert sent == Sent(provider_message_id="d1") and hash(sent) == hash(Sent("d1")) and sent != Sent("d2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        sent.provider_message_id = "d2"  # type: ignore[misc]
    assert repr(sent) == "Sent(provider_message_id='d1')"


def not_frozen() -> type:  # its own __init__ may set attributes as any class's does
    @dataclasses.dataclass
    class Plain:
        name: str

    return Plain


def with_slots() -> type:  # no __dict__ to store into
    @dataclasses.dataclass(frozen=True, slots=True)
    class Slotted:
        name: str

    return Slotted


def with_default_factory() -> type:
    @dataclasses.dataclass(frozen=True)
    class Factory:
        names: list[str] = dataclasses.field(default_factory=list)

    return Factory


def with_post_init() -> type:
    @dataclasses.dataclass(frozen=True)
    class PostInit:
        name: str

        def __post_init__(self) -> None: ...

    return PostInit


def keyword_only() -> type:
    @dataclasses.dataclass(frozen=True)
    class KeywordOnly:
        name: str = dataclasses.field(kw_only=True)

    return KeywordOnly


@pytest.mark.parametrize("make", [not_frozen, with_slots, with_default_factory, with_post_init, keyword_only])
def test_init_into_dict_refuses_what_it_would_get_wrong(make: Callable[[], type]) -> None:
    with pytest.raises(TypeError, match="init_into_dict"):
        init_into_dict(make())
