"""The request models and parameter parsers, in general: bad input is a validation error and nothing else,
and whatever they accept is what the store and the templates can hold (one-line NFC text without control
characters, ASCII ids and codes, ids the store's integers hold, times inside the calendar, shallow data).
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from notifier.api.apikeys import ApiKeyQuery
from notifier.api.catalog import PageQuery
from notifier.api.notices import NoticeQuery
from notifier.api.subscribers import SubscriberQuery
from notifier.domain.contacts import area_level, normalise_email, normalise_phone
from notifier.domain.errors import InvalidInput
from notifier.domain.models import (
    MAX_DATA_DEPTH,
    MAX_ID,
    AreaIn,
    Decision,
    NoticeIn,
    QuietHours,
    SubscriberIn,
    SubscriberPatch,
    Target,
    TopicIn,
)
from notifier.store.common import decode_cursor
from subscribers.rows import COLUMNS, Catalog, parse_row
from tests.properties import BOUNDED, SOME, integers, json_values, texts

REFUSED = {"Cc", "Cf", "Cs", "Zl", "Zp"}
SINGLE_LINE_FIELDS = {"name", "title", "external_id", "consent_source"}
digits = st.text(alphabet="0123456789¹²③１٣۴०", min_size=1, max_size=14)
times = st.one_of(
    st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
    st.sampled_from(["9999-12-31T23:00:00-12:00", "0001-01-01T00:00:00+05:00", "2026-13-45T99:00:00Z", "now"]),
    texts(),
)
codes = st.one_of(st.sampled_from(["air-quality", "dibao", "x", "A-b"]), texts(10))
area_codes = st.one_of(digits, st.sampled_from(["370725", "370725001", "370725001036"]), texts(12))
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "name": texts(),
    "title": texts(),
    "body": texts(),
    "phone": st.one_of(st.sampled_from(["13900001111", "+8613900001111", "１３９００００１１１１"]), digits, texts()),
    "email": st.one_of(st.emails(), texts()),
    "area_code": area_codes,
    "code": codes,
    "areas": st.lists(area_codes, max_size=3),
    "groups": st.lists(codes, max_size=3),
    "topics": st.lists(codes, max_size=3),
    "subscribers": st.lists(integers(), max_size=3),
    "references": integers(),
    "send_at": times,
    "expires_at": times,
    "data": st.dictionaries(texts(10), json_values(), max_size=4),
    "quiet_hours": st.fixed_dictionaries({"start": st.one_of(digits, texts(6)), "end": st.just("07:00")}),
    "limit": st.one_of(integers(), texts(6), digits),
    "cursor": texts(),
}
MODELS: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (NoticeIn, {"topic": "air-quality", "title": "t", "body": "b", "target": {"areas": ["370725"]}}),
    (SubscriberIn, {"name": "张三", "area_code": "370725001036"}),
    (SubscriberPatch, {}),
    (TopicIn, {"code": "water", "name": "供水"}),
    (AreaIn, {"code": "370725001900", "name": "新村"}),
    (Target, {"areas": ["370725"]}),
    (Decision, {}),
    (QuietHours, {"start": "22:00", "end": "07:00"}),
    (PageQuery, {}),
    (NoticeQuery, {}),
    (SubscriberQuery, {}),
    (ApiKeyQuery, {}),
]


def field_values(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """A few of the model's fields (and an unknown one), each with values aimed at it or any JSON."""
    names = st.lists(st.sampled_from([*model.model_fields, "unknown"]), unique=True, max_size=4)
    return names.flatmap(
        lambda chosen: st.fixed_dictionaries({name: FIELD_VALUES.get(name, json_values()) for name in chosen})
    )


def check_stored_shape(value: Any, field: str = "", depth: int = 0) -> None:
    """What the store and the templates rely on, for every value of an accepted model."""
    assert depth <= MAX_DATA_DEPTH + 3, field
    if isinstance(value, str):
        assert unicodedata.is_normalized("NFC", value), field
        allowed = "" if field in SINGLE_LINE_FIELDS else "\n\t"
        assert not [c for c in value if c not in allowed and unicodedata.category(c) in REFUSED], field
    elif isinstance(value, bool) or value is None or isinstance(value, float):
        pass
    elif isinstance(value, int):
        assert -(2**63) <= value <= MAX_ID, field
    elif isinstance(value, dict):
        for key, item in value.items():
            check_stored_shape(key, "name", depth + 1)
            check_stored_shape(item, str(key) if depth == 0 else field, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_stored_shape(item, field, depth + 1)


@pytest.mark.parametrize(("model", "valid"), MODELS, ids=[m.__name__ for m, _ in MODELS])
@SOME
@given(data=st.data())
def test_a_model_refuses_with_a_validation_error_or_accepts_storable_values(
    model: type[BaseModel], valid: dict[str, Any], data: st.DataObject
) -> None:
    changes = data.draw(field_values(model))
    try:
        accepted = model.model_validate({**valid, **changes})
    except ValidationError as exc:
        assert exc.errors(include_url=False)
        return
    dumped = accepted.model_dump(mode="json")
    json.dumps(dumped, ensure_ascii=False).encode("utf-8")  # the store's encoding never fails
    check_stored_shape(dumped)
    for name in ("send_at", "expires_at"):
        moment = getattr(accepted, name, None)
        if moment is not None:
            assert moment.utcoffset().total_seconds() == 0
    for code in [getattr(accepted, "area_code", None), *(getattr(accepted, "areas", None) or [])]:
        assert code is None or re.fullmatch(r"[0-9]{6}|[0-9]{9}|[0-9]{12}", code)


@BOUNDED
@given(text=st.one_of(texts(60), digits, st.builds(lambda n: f"id:{n}", st.one_of(integers(), digits))))
def test_a_cursor_is_an_id_the_store_holds_or_invalid_input(text: str) -> None:
    import base64

    for cursor in (text, base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")):
        try:
            last = decode_cursor(cursor)
        except InvalidInput as exc:
            assert [e.loc for e in exc.errors] == ["query.cursor"]
            continue
        assert last is None or 0 <= last <= MAX_ID


@BOUNDED
@given(
    text=st.one_of(
        texts(30), digits, st.sampled_from(["+8613900001111", "0086 139 0000 1111", "１３９００００１１１１"])
    )
)
def test_a_phone_number_is_ascii_e164_or_a_value_error(text: str) -> None:
    try:
        phone = normalise_phone(text)
    except ValueError:
        return
    assert re.fullmatch(r"\+[0-9]{8,15}", phone)


@BOUNDED
@given(text=st.one_of(texts(40), st.emails()))
def test_an_email_address_has_no_control_characters_or_is_a_value_error(text: str) -> None:
    try:
        address = normalise_email(text)
    except ValueError:
        return
    assert not [c for c in address if unicodedata.category(c) in REFUSED]


@BOUNDED
@given(text=st.one_of(digits, area_codes))
def test_an_area_code_is_ascii_or_a_value_error(text: str) -> None:
    try:
        area_level(text)
    except ValueError:
        return
    assert re.fullmatch(r"[0-9]+", text)


CATALOG = Catalog(
    {"370725", "370725001", "370725001036"}, {"dibao": "dibao", "低保": "dibao"}, {"education": "education"}
)


@BOUNDED
@given(cells=st.lists(st.one_of(st.none(), texts(30), digits), min_size=len(COLUMNS), max_size=len(COLUMNS)))
def test_any_roster_row_is_imported_clean_or_reported(cells: list[str | None]) -> None:
    row = parse_row(2, cells, {name: index for index, name in enumerate(COLUMNS)}, CATALOG, "import:test")
    assert (row.data is None) == bool(row.errors)
    if row.data is not None:
        check_stored_shape(row.data.model_dump(mode="json"))
    for error in row.errors:
        assert error.field and error.message
