"""CAP 1.2 documents: read (defusedxml), check against the bundled OASIS schema (xmlschema), write.

``read_alert(data)`` turns the bytes of an ``<alert>`` into a :class:`CapAlert` or raises
:class:`InvalidCap` with the schema's own error (its reason and the path of the element at fault);
``write_alert(alert)`` is the inverse. What is kept of an alert: the alert's header (identifier, sender,
sent, status, msgType, source, scope, codes, note, references, incidents) and of each ``<info>`` its
language, categories, event, response types, urgency, severity, certainty, audience, event codes,
effective, onset, expires, sender name, headline, description, instruction, web, contact, parameters,
resources (description, MIME type, size, URI, digest, and the inline ``derefUri`` when it is at most
``DEREF_MAX`` characters: a bigger one, often megabytes of base64 audio, is dropped and its URI and digest
kept) and areas (description, polygons, circles, geocodes, altitude, ceiling). ``restriction`` and
``addresses`` (only Restricted and Private alerts have them, and those never become notices) are not kept,
and neither is an XML signature. So ``read_alert(write_alert(read_alert(x))) == read_alert(x)`` for every
valid ``x``: the round trip the tests check on the OASIS examples and on published alerts.

Every repeated element and every text is bounded (``COUNT_MAX`` per parent, ``LENGTH_MAX`` characters,
``references`` and ``incidents`` by their entries), and so is the nesting (``MAX_DEPTH``, checked before the
schema, whose check recurses once a level): past a bound the alert is refused with ``InvalidCap`` naming the
element, as for a schema error.

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

from notifier.domain.text import xml_chars

NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
MEDIA_TYPE = "application/cap+xml"
_NS = f"{{{NAMESPACE}}}"
MAX_SCHEMA_ERRORS = 10
MAX_DEPTH = 32  # levels of elements: CAP's own go 5 deep (alert/info/area/geocode/value), a signature's a few more
DEREF_MAX = 65536  # characters of base64 kept of a resource's derefUri; a bigger payload is dropped
# the most of each repeated element one parent may hold
COUNT_MAX = {
    "code": 20, "info": 20, "category": 12, "responseType": 10, "eventCode": 50, "parameter": 100,
    "resource": 20, "area": 100, "polygon": 100, "circle": 100, "geocode": 1000,
}
ENTRIES_MAX = {"references": 100, "incidents": 100}  # space-separated lists in one element
# the longest text of an element, in characters (derefUri: see DEREF_MAX)
LENGTH_MAX = {
    "identifier": 500, "sender": 500, "source": 500, "code": 200, "note": 5000, "references": 50000,
    "incidents": 10000, "event": 500, "audience": 1000, "senderName": 500, "headline": 1000,
    "description": 20000, "instruction": 20000, "web": 2048, "contact": 1000, "valueName": 200, "value": 2000,
    "resourceDesc": 1000, "mimeType": 255, "uri": 2048, "digest": 128, "areaDesc": 1000, "polygon": 60000,
    "circle": 200, "altitude": 32, "ceiling": 32,
}


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
    altitude: str | None = None  # feet above sea level, as written
    ceiling: str | None = None


class CapResource(_Model):
    description: str
    mime_type: str
    size: str | None = None  # bytes, as written
    uri: str | None = None
    deref_uri: str | None = None  # the base64 content, when at most DEREF_MAX characters
    digest: str | None = None  # SHA-1 of the content, hex


class CapInfo(_Model):
    language: str = "en-US"
    categories: tuple[str, ...]
    event: str
    response_types: tuple[str, ...] = ()
    urgency: str
    severity: str
    certainty: str
    audience: str | None = None
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
    resources: tuple[CapResource, ...] = ()
    areas: tuple[CapArea, ...] = ()


class CapAlert(_Model):
    identifier: str
    sender: str
    sent: str
    status: str
    msg_type: str
    source: str | None = None
    scope: str
    codes: tuple[str, ...] = ()
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
    except LookupError as exc:  # the XML declaration names an encoding Python does not know
        raise InvalidCap(f"unreadable XML: {exc}", [("/", f"unreadable XML: {exc}")]) from None
    if root.tag != f"{_NS}alert":
        found = root.tag.replace("{", "").replace("}", " ")
        raise InvalidCap(
            f"the root element is {found}, not alert in {NAMESPACE}",
            [("/", f"expected the element alert of namespace {NAMESPACE}, found {found}")],
        )
    too_deep = _deeper_than(root, MAX_DEPTH)
    if too_deep is not None:  # the schema check and the bounds walk recurse once a level: refuse before them
        reason = f"elements are nested more than {MAX_DEPTH} levels deep"
        raise InvalidCap(f"too large: {too_deep}: {reason}", [(too_deep, reason)])
    errors = schema_errors(root)
    if errors:
        path, reason = errors[0]
        raise InvalidCap(f"not valid against the CAP 1.2 schema: {path}: {reason}", errors)
    errors = bound_errors(root)
    if errors:
        path, reason = errors[0]
        raise InvalidCap(f"too large: {path}: {reason}", errors)
    return _alert(root)


def _deeper_than(root: Element, levels: int) -> str | None:
    """The path of the first element more than ``levels`` deep (the root is level 1), or None; walked without
    recursion, so any depth the parser took is measured."""
    stack = [(root, 1, "/alert")]
    while stack:
        element, level, path = stack.pop()
        if level > levels:
            return path
        stack.extend((child, level + 1, f"{path}/{child.tag.replace(_NS, '')}") for child in element)
    return None


def bound_errors(root: Element) -> list[tuple[str, str]]:
    """(path, reason) of each repeated element past COUNT_MAX and each text past LENGTH_MAX or ENTRIES_MAX, at
    most MAX_SCHEMA_ERRORS; empty when the alert is within bounds."""
    errors: list[tuple[str, str]] = []

    def walk(element: Element, path: str) -> None:
        counts: dict[str, int] = {}
        for child in element:
            name = child.tag.replace(_NS, "")
            counts[name] = counts.get(name, 0) + 1
            where = f"{path}/{name}[{counts[name]}]"
            text = (child.text or "").strip()
            if name in LENGTH_MAX and len(text) > LENGTH_MAX[name]:
                errors.append((where, f"{name} is {len(text)} characters long; at most {LENGTH_MAX[name]} are taken"))
            if name in ENTRIES_MAX and len(text.split()) > ENTRIES_MAX[name]:
                errors.append((where, f"{name} lists {len(text.split())} entries; at most {ENTRIES_MAX[name]}"))
            walk(child, where)
        for name, count in counts.items():
            if count > COUNT_MAX.get(name, count):
                errors.append((f"{path}/{name}", f"{count} {name} elements; at most {COUNT_MAX[name]} are taken"))

    walk(root, "/alert")
    return errors[:MAX_SCHEMA_ERRORS]


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
        altitude=_text(element, "altitude"),
        ceiling=_text(element, "ceiling"),
    )


def _resource(element: Element) -> CapResource:
    deref = _text(element, "derefUri")
    return CapResource(
        description=_text(element, "resourceDesc") or "",
        mime_type=_text(element, "mimeType") or "",
        size=_text(element, "size"),
        uri=_text(element, "uri"),
        deref_uri=deref if deref is not None and len(deref) <= DEREF_MAX else None,
        digest=_text(element, "digest"),
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
        audience=_text(element, "audience"),
        event_codes=_pairs(element, "eventCode"),
        parameters=_pairs(element, "parameter"),
        resources=tuple(_resource(resource) for resource in element.findall(_NS + "resource")),
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
        codes=_texts(root, "code"),
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
    for name in ("urgency", "severity", "certainty", "audience"):
        _add(element, name, getattr(info, name))
    _add_pairs(element, "eventCode", info.event_codes)
    for name in ("effective", "onset", "expires", "senderName", "headline", "description", "instruction"):
        _add(element, name, getattr(info, _snake(name)))
    _add(element, "web", info.web)
    _add(element, "contact", info.contact)
    _add_pairs(element, "parameter", info.parameters)
    for resource in info.resources:
        resource_element = ET.SubElement(element, _NS + "resource")
        for name, value in (
            ("resourceDesc", resource.description), ("mimeType", resource.mime_type), ("size", resource.size),
            ("uri", resource.uri), ("derefUri", resource.deref_uri), ("digest", resource.digest),
        ):
            _add(resource_element, name, value)
    for area in info.areas:
        area_element = ET.SubElement(element, _NS + "area")
        _add(area_element, "areaDesc", area.description)
        for polygon in area.polygons:
            _add(area_element, "polygon", polygon)
        for circle in area.circles:
            _add(area_element, "circle", circle)
        _add_pairs(area_element, "geocode", area.geocodes)
        _add(area_element, "altitude", area.altitude)
        _add(area_element, "ceiling", area.ceiling)


def xml_safe(root: Element) -> Element:
    """``root`` with every text, tail and attribute value cut to what XML 1.0 can hold (``xml_chars``):
    ElementTree escapes markup but writes any character, so a notice's U+FFFE would make the document
    unreadable. Stored texts keep their characters; only the written document drops them."""
    for element in root.iter():
        if element.text:
            element.text = xml_chars(element.text)
        if element.tail:
            element.tail = xml_chars(element.tail)
        for name, value in element.attrib.items():
            element.set(name, xml_chars(value))
    return root


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
    ):
        _add(root, name, value)
    for code in alert.codes:
        _add(root, "code", code)
    for name, value in (
        ("note", alert.note),
        ("references", " ".join(alert.references) or None),
        ("incidents", alert.incidents),
    ):
        _add(root, name, value)
    for info in alert.infos:
        _write_info(root, info)
    ET.indent(root)
    body: bytes = ET.tostring(xml_safe(root), encoding="utf-8", xml_declaration=True, default_namespace=NAMESPACE)
    return body
