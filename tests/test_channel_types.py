"""The result and message types of the channel contract (``channels.base``): frozen dataclasses, two of them with an
``__init__`` of their own (one per message sent, cheaper than the one dataclass writes) that must stay in step with
their fields."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from channels.base import OutboundMessage, Sent


@pytest.mark.parametrize("cls", [OutboundMessage, Sent])
def test_the_own_init_takes_the_fields_in_order_with_their_defaults(cls: type) -> None:
    parameters = list(inspect.signature(cls).parameters.values())
    fields = dataclasses.fields(cls)
    assert [p.name for p in parameters] == [f.name for f in fields]
    for parameter, field in zip(parameters, fields, strict=True):
        expected = inspect.Parameter.empty if field.default is dataclasses.MISSING else field.default
        assert parameter.default == expected, field.name
        assert parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD


def test_a_message_is_frozen_and_compares_by_its_fields() -> None:
    message = OutboundMessage(delivery_id=1, notice_id=2, channel="sms", alias="sms", recipient="+8613900000001",
                              text="t", idempotency_key="n2-s1-sms", priority=3, resend=1)  # fmt: skip
    assert vars(message) == {
        "delivery_id": 1, "notice_id": 2, "channel": "sms", "alias": "sms", "recipient": "+8613900000001",
        "text": "t", "idempotency_key": "n2-s1-sms", "subject": None, "html": None, "priority": 3,
        "confirm_url": None, "resend": 1,
    }  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.text = "changed"  # type: ignore[misc]
    again = dataclasses.replace(message, text="t")
    assert again == message and hash(again) == hash(message) and again is not message
    assert dataclasses.replace(message, resend=0) != message
    assert repr(message).startswith("OutboundMessage(delivery_id=1, notice_id=2, ")


def test_sent_is_frozen_and_compares_by_its_id() -> None:
    sent = Sent("d1")
    assert sent == Sent(provider_message_id="d1") and hash(sent) == hash(Sent("d1")) and sent != Sent("d2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        sent.provider_message_id = "d2"  # type: ignore[misc]
    assert repr(sent) == "Sent(provider_message_id='d1')"
