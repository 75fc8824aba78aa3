"""CAP 1.2 documents: read (defusedxml), check against the bundled OASIS schema (xmlschema), write.

``read_alert(data)`` turns the bytes of an ``<alert>`` into a :class:`CapAlert` or raises
:class:`InvalidCap` with the schema's own error (its reason and the path of the element at fault);
``write_alert(alert)`` is the inverse. What is kept of an alert is what notifier maps or shows: the
alert's header (identifier, sender, sent, status, msgType, source, scope, note, references, incidents)
and of each ``<info>`` its language, categories, event, response types, urgency, severity, certainty,
event codes, effective, onset, expires, sender name, headline, description, instruction, web, contact,
parameters and areas (description, polygons, circles, geocodes). Resources (often megabytes of base64
audio), ``restriction``, ``addresses``, ``code``, ``audience``, ``altitude`` and ``ceiling`` are not
kept, and neither is an XML signature. So ``read_alert(write_alert(read_alert(x))) == read_alert(x)``
for every valid ``x``: the round trip the tests check on the OASIS examples and on published alerts.

Times stay the exact text of the document (CAP writes UTC as ``-00:00``, which Python does not), and
text is kept with surrounding blanks stripped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import cache
from importlib.resources import as_file, files
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
import xmlschema
from defusedxml import DefusedXmlException
from pydantic import BaseModel, ConfigDict

NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
MEDIA_TYPE = "application/cap+xml"
_NS = f"{{{NAMESPACE}}}"
MAX_SCHEMA_ERRORS = 10


class InvalidCap(Exception):
    """The document is not a CAP 1.2 alert: ``errors`` are (path, reason) pairs, the schema's own words."""

    def __init__(self, summary: str, errors: list[tuple[str, str]]) -> None:
        super().__init__(summary)
        self.summary = summary
        self.errors = errors


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CapArea(_Model):
    description: str
    polygons: tuple[str, ...] = ()
    circles: tuple[str, ...] = ()
    geocodes: tuple[tuple[str, str], ...] = ()


class CapInfo(_Model):
    language: str = "en-US"
    categories: tuple[str, ...]
    event: str
    response_types: tuple[str, ...] = ()
    urgency: str
    severity: str
    certainty: str
    event_codes: tuple[tuple[str, str], ...] = ()
    effective: str | None = None
    onset: str | None = None
    expires: str | None = None
    sender_name: str | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    web: str | None = None
    contact: str | None = None
    parameters: tuple[tuple[str, str], ...] = ()
    areas: tuple[CapArea, ...] = ()


class CapAlert(_Model):
    identifier: str
    sender: str
    sent: str
    status: str
    msg_type: str
    source: str | None = None
    scope: str
    note: str | None = None
    references: tuple[str, ...] = ()  # "sender,identifier,sent" triples
    incidents: str | None = None
    infos: tuple[CapInfo, ...] = ()

    def referenced(self) -> list[tuple[str, str]]:
        """(sender, identifier) of every message this one refers to."""
        out = []
        for triple in self.references:
            sender, _, rest = triple.partition(",")
            identifier = rest.partition(",")[0]
            out.append((sender, identifier))
        return out

    def as_reference(self) -> str:
        return f"{self.sender},{self.identifier},{self.sent}"


@cache
def _schema() -> xmlschema.XMLSchema:
    with as_file(files("notifier.cap").joinpath("schema", "CAP-v1.2.xsd")) as path:
        return xmlschema.XMLSchema(str(path))


def load_schema() -> None:
    """Build the schema once (about a second); later validations reuse it."""
    _schema()


def schema_errors(root: Element) -> list[tuple[str, str]]:
    """(path, reason) of each violation of the CAP 1.2 schema, at most MAX_SCHEMA_ERRORS; empty when valid."""
    errors = []
    for error in _schema().iter_errors(root):
        path = (error.path or "/").replace(_NS, "")
        errors.append((path, str(error.reason or error.message)))
        if len(errors) >= MAX_SCHEMA_ERRORS:
            break
    return errors


def read_alert(data: bytes) -> CapAlert:
    """Parse and validate a CAP 1.2 alert; InvalidCap naming the first problems. CPU-bound: run in a thread."""
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise InvalidCap(
            "DTDs and entities are not accepted", [("/", f"refused: {type(exc).__name__}")]
        ) from None
    except ET.ParseError as exc:
        raise InvalidCap(f"not well-formed XML: {exc}", [("/", f"not well-formed XML: {exc}")]) from None
    if root.tag != f"{_NS}alert":
        found = root.tag.replace("{", "").replace("}", " ")
        raise InvalidCap(
            f"the root element is {found}, not alert in {NAMESPACE}",
            [("/", f"expected the element alert of namespace {NAMESPACE}, found {found}")],
        )
    errors = schema_errors(root)
    if errors:
        path, reason = errors[0]
        raise InvalidCap(f"not valid against the CAP 1.2 schema: {path}: {reason}", errors)
    return _alert(root)


def _text(parent: Element, name: str) -> str | None:
    child = parent.find(_NS + name)
    if child is None or child.text is None:
        return None
    return child.text.strip()


def _texts(parent: Element, name: str) -> tuple[str, ...]:
    return tuple((child.text or "").strip() for child in parent.findall(_NS + name))


def _pairs(parent: Element, name: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        ((_text(child, "valueName") or ""), (_text(child, "value") or "")) for child in parent.findall(_NS + name)
    )


def _area(element: Element) -> CapArea:
    return CapArea(
        description=_text(element, "areaDesc") or "",
        polygons=_texts(element, "polygon"),
        circles=_texts(element, "circle"),
        geocodes=_pairs(element, "geocode"),
    )


def _info(element: Element) -> CapInfo:
    optional = ("effective", "onset", "expires", "senderName", "headline", "description", "instruction")
    fields: dict[str, Any] = {_snake(name): _text(element, name) for name in (*optional, "web", "contact")}
    return CapInfo(
        language=_text(element, "language") or "en-US",
        categories=_texts(element, "category"),
        event=_text(element, "event") or "",
        response_types=_texts(element, "responseType"),
        urgency=_text(element, "urgency") or "",
        severity=_text(element, "severity") or "",
        certainty=_text(element, "certainty") or "",
        event_codes=_pairs(element, "eventCode"),
        parameters=_pairs(element, "parameter"),
        areas=tuple(_area(area) for area in element.findall(_NS + "area")),
        **fields,
    )


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _alert(root: Element) -> CapAlert:
    references = _text(root, "references")
    return CapAlert(
        identifier=_text(root, "identifier") or "",
        sender=_text(root, "sender") or "",
        sent=_text(root, "sent") or "",
        status=_text(root, "status") or "",
        msg_type=_text(root, "msgType") or "",
        source=_text(root, "source"),
        scope=_text(root, "scope") or "",
        note=_text(root, "note"),
        references=tuple(references.split()) if references else (),
        incidents=_text(root, "incidents"),
        infos=tuple(_info(info) for info in root.findall(_NS + "info")),
    )


# --- writing ---------------------------------------------------------------------------------------------------


def _add(parent: Element, name: str, text: str | None) -> None:
    if text is not None:
        ET.SubElement(parent, _NS + name).text = text


def _add_pairs(parent: Element, name: str, pairs: tuple[tuple[str, str], ...]) -> None:
    for value_name, value in pairs:
        pair = ET.SubElement(parent, _NS + name)
        _add(pair, "valueName", value_name)
        _add(pair, "value", value)


def _write_info(parent: Element, info: CapInfo) -> None:
    element = ET.SubElement(parent, _NS + "info")
    _add(element, "language", info.language)
    for category in info.categories:
        _add(element, "category", category)
    _add(element, "event", info.event)
    for response in info.response_types:
        _add(element, "responseType", response)
    for name in ("urgency", "severity", "certainty"):
        _add(element, name, getattr(info, name))
    _add_pairs(element, "eventCode", info.event_codes)
    for name in ("effective", "onset", "expires", "senderName", "headline", "description", "instruction"):
        _add(element, name, getattr(info, _snake(name)))
    _add(element, "web", info.web)
    _add(element, "contact", info.contact)
    _add_pairs(element, "parameter", info.parameters)
    for area in info.areas:
        area_element = ET.SubElement(element, _NS + "area")
        _add(area_element, "areaDesc", area.description)
        for polygon in area.polygons:
            _add(area_element, "polygon", polygon)
        for circle in area.circles:
            _add(area_element, "circle", circle)
        _add_pairs(area_element, "geocode", area.geocodes)


def write_alert(alert: CapAlert) -> bytes:
    """The alert as a CAP 1.2 document (UTF-8, with an XML declaration), elements in the schema's order."""
    root = ET.Element(_NS + "alert")
    for name, value in (
        ("identifier", alert.identifier),
        ("sender", alert.sender),
        ("sent", alert.sent),
        ("status", alert.status),
        ("msgType", alert.msg_type),
        ("source", alert.source),
        ("scope", alert.scope),
        ("note", alert.note),
        ("references", " ".join(alert.references) or None),
        ("incidents", alert.incidents),
    ):
        _add(root, name, value)
    for info in alert.infos:
        _write_info(root, info)
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True, default_namespace=NAMESPACE)
    return body
