"""CAP 1.2: the OASIS examples and published alerts through POST /api/v1/cap and back out of cap.xml."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from notifier.cap.areas import distance_km, match_areas
from notifier.cap.document import CapArea, InvalidCap, read_alert, write_alert
from notifier.demo.loader import read_areas, read_centroids
from notifier.domain.enums import ChannelKind
from tests.conftest import COUNTY, TOWN_A, TOWN_B, VILLAGE_A1, Api

DATA = Path(__file__).parent / "data" / "cap"
PUBLISHED = sorted(DATA.glob("*.xml"))
CAP_XML = {"Content-Type": "application/cap+xml"}
SEAT = COUNTY_SEAT = (36.706964, 118.829992)  # the county seat, the county's point in the demo data


def changle_alert(identifier: str, *, msg_type: str = "Alert", references: str = "", area: str = "") -> bytes:
    """A heavy-pollution alert of the kind the county's environment bureau relays (written for these tests)."""
    refs = f"<references>{references}</references>" if references else ""
    area = area or f"<geocode><valueName>GB/T 2260</valueName><value>{TOWN_A}</value></geocode>"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>370725000000@12379.cn</sender>
  <sent>2026-11-29T16:00:00+08:00</sent><status>Actual</status><msgType>{msg_type}</msgType>
  <scope>Public</scope>{refs}
  <info><language>zh-CN</language><category>Env</category><event>重污染天气</event>
    <urgency>Expected</urgency><severity>Severe</severity><certainty>Likely</certainty>
    <expires>2030-12-02T00:00:00+08:00</expires><headline>重污染天气橙色预警</headline>
    <description>预计明起三天出现重污染天气。</description><instruction>请减少户外活动。</instruction>
    <area><areaDesc>宝都街道</areaDesc>{area}</area></info>
</alert>""".encode()


KEPT = ("code", "audience", "parameter", "resource", "altitude", "ceiling")


def kept_elements(data: bytes) -> list[tuple[str, str]]:
    """(path, text) of every code, audience, parameter, resource, altitude and ceiling of a document and of their
    children, read with the XML parser alone (not notifier's reader), in document order."""
    found: list[tuple[str, str]] = []

    def walk(element: ET.Element, path: str, inside: bool) -> None:
        counts: dict[str, int] = {}
        for child in element:
            name = child.tag.rpartition("}")[2]
            counts[name] = counts.get(name, 0) + 1
            where = f"{path}/{name}[{counts[name]}]"
            kept = inside or name in KEPT
            if kept and len(child) == 0:
                found.append((where, (child.text or "").strip()))
            walk(child, where, kept)

    walk(ET.fromstring(data), "alert", False)
    return found


def full_alert(identifier: str, *, resource: str = "", extra_codes: int = 0, parameter: str = "值") -> bytes:
    """An alert using every element notifier keeps (written for these tests): codes, audience, parameters,
    a resource with size, inline content and digest, an area with altitude and ceiling."""
    content = base64.b64encode("预警广播".encode()).decode()
    resource = resource or f"""<resource><resourceDesc>预警广播音频</resourceDesc><mimeType>audio/mpeg</mimeType>
      <size>12</size><uri>http://127.0.0.1/a.mp3</uri><derefUri>{content}</derefUri>
      <digest>{hashlib.sha1(b"x").hexdigest()}</digest></resource>"""
    codes = "".join(f"<code>extra-{n}</code>" for n in range(extra_codes))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>370725000000@12379.cn</sender>
  <sent>2026-11-29T16:00:00+08:00</sent><status>Actual</status><msgType>Alert</msgType>
  <scope>Public</scope><code>GB/T 35965.1</code><code>IPAWSv1.0</code>{codes}
  <info><language>zh-CN</language><category>Met</category><event>暴雨</event>
    <urgency>Immediate</urgency><severity>Severe</severity><certainty>Likely</certainty>
    <audience>沿河村庄居民</audience>
    <expires>2030-12-02T00:00:00+08:00</expires><headline>暴雨橙色预警</headline>
    <description>预计未来6小时降雨量达100毫米以上。</description>
    <parameter><valueName>预警级别</valueName><value>{parameter}</value></parameter>
    <parameter><valueName>EAS-ORG</valueName><value>WXR</value></parameter>
    {resource}
    <area><areaDesc>宝都街道</areaDesc>
      <geocode><valueName>GB/T 2260</valueName><value>{TOWN_A}</value></geocode>
      <altitude>100</altitude><ceiling>3000.5</ceiling></area></info>
</alert>""".encode()


def still_current(published: bytes) -> bytes:
    """A published alert as if it were sent today: its ``expires`` moved to the same moment in 2099 (an alert
    already expired is refused, ``tests/test_notice_expiry.py``), the rest as published."""
    return re.sub(rb"<expires>\d{4}", b"<expires>2099", published)


async def _count_notices(api: Api) -> int:
    notices, _ = await api.store.list_notices(department=None, state=None, cursor=None, limit=500)
    return len(notices)


@pytest.mark.parametrize("path", PUBLISHED, ids=lambda p: p.stem)
def test_published_alerts_survive_a_write_and_a_read(path: Path) -> None:
    alert = read_alert(path.read_bytes())
    assert alert.infos, "every sample has at least one info"
    again = read_alert(write_alert(alert))  # read_alert validates the written document against the XSD
    assert again == alert


@pytest.mark.parametrize("path", PUBLISHED, ids=lambda p: p.stem)
async def test_import_export_import_gives_the_same_alert(api: Api, path: Path) -> None:
    original = still_current(await asyncio.to_thread(path.read_bytes))
    status, notice = await api.call(
        "POST", f"/api/v1/cap?area={TOWN_A}", key="civ-issuer", data=original, headers=CAP_XML
    )
    assert status == 201, notice
    alert = read_alert(original)
    info = next((i for i in alert.infos if i.language.startswith("zh")), alert.infos[0])
    assert notice["state"] == "pending_approval"
    assert notice["title"] == " ".join((info.headline or info.event).split())[:200]
    assert notice["severity"] == {"Unknown": "info"}.get(info.severity, info.severity.lower())
    assert notice["target"]["areas"] == [TOWN_A]
    assert notice["cap_identifier"] == alert.as_reference()
    assert info.description is None or " ".join(info.description.split())[:50] in " ".join(notice["body"].split())
    status, exported = await api.call("GET", f"/api/v1/notices/{notice['id']}/cap.xml", key="civ-viewer")
    assert status == 200
    assert read_alert(exported.encode()) == alert
    assert kept_elements(exported.encode()) == kept_elements(original)
    status, again = await api.call(
        "POST", f"/api/v1/cap?area={TOWN_A}", key="civ-issuer", data=exported.encode(), headers=CAP_XML
    )
    assert (status, again["id"]) == (200, notice["id"])


def test_the_published_alerts_have_codes_parameters_and_resources_to_keep() -> None:
    kinds = {path.split("/")[-1].partition("[")[0] for p in PUBLISHED for path, _ in kept_elements(p.read_bytes())}
    assert {"code", "valueName", "value", "resourceDesc", "mimeType", "uri"} <= kinds


async def test_codes_audience_parameters_resources_altitude_and_ceiling_survive_import_and_export(
    api: Api,
) -> None:
    original = full_alert("full-1")
    status, notice = await api.call("POST", "/api/v1/cap", key="civ-issuer", data=original, headers=CAP_XML)
    assert status == 201, notice
    status, exported = await api.call("GET", f"/api/v1/notices/{notice['id']}/cap.xml", key="civ-viewer")
    assert status == 200
    kept = kept_elements(exported.encode())
    assert kept == kept_elements(original)
    names = {path.split("/")[-1].partition("[")[0] for path, _ in kept}
    assert names == {"code", "audience", "valueName", "value", "resourceDesc", "mimeType", "size", "uri",
                     "derefUri", "digest", "altitude", "ceiling"}
    assert read_alert(exported.encode()) == read_alert(original)


async def test_lists_and_texts_past_their_bounds_are_refused_and_big_inline_content_is_dropped(api: Api) -> None:
    before = await _count_notices(api)
    status, problem = await api.call("POST", "/api/v1/cap", data=full_alert("many", extra_codes=19),
                                     headers=CAP_XML)
    assert (status, problem["type"]) == (422, "/problems/invalid-cap"), problem
    assert problem["errors"][0]["loc"] == "/alert/code" and "at most 20" in problem["errors"][0]["msg"]
    status, problem = await api.call("POST", "/api/v1/cap", data=full_alert("long", parameter="长" * 2001),
                                     headers=CAP_XML)
    assert status == 422
    assert problem["errors"][0]["loc"] == "/alert/info[1]/parameter[1]/value[1]", problem
    assert "at most 2000" in problem["errors"][0]["msg"]
    resources = "".join(
        f"<resource><resourceDesc>r{n}</resourceDesc><mimeType>text/plain</mimeType></resource>" for n in range(21)
    )
    status, problem = await api.call("POST", "/api/v1/cap", data=full_alert("res", resource=resources),
                                     headers=CAP_XML)
    assert (status, problem["errors"][0]["loc"]) == (422, "/alert/info[1]/resource")
    references = " ".join(f"s,id-{n},2026-11-29T16:00:00+08:00" for n in range(101))
    status, problem = await api.call(
        "POST", "/api/v1/cap", headers=CAP_XML,
        data=changle_alert("refs", msg_type="Update", references=references))
    assert (status, problem["errors"][0]["loc"]) == (422, "/alert/references[1]")
    assert await _count_notices(api) == before

    audio = base64.b64encode(b"\0" * 60_000).decode()  # 80,000 characters: past DEREF_MAX
    big = f"""<resource><resourceDesc>录音</resourceDesc><mimeType>audio/mpeg</mimeType><size>60000</size>
      <uri>http://127.0.0.1/b.mp3</uri><derefUri>{audio}</derefUri><digest>{"a" * 40}</digest></resource>"""
    status, notice = await api.call("POST", "/api/v1/cap", data=full_alert("big", resource=big), headers=CAP_XML)
    assert status == 201, notice
    status, exported = await api.call("GET", f"/api/v1/notices/{notice['id']}/cap.xml")
    resource = read_alert(exported.encode()).infos[0].resources[0]
    assert (resource.deref_uri, resource.uri, resource.size, resource.digest) == (
        None, "http://127.0.0.1/b.mp3", "60000", "a" * 40)


async def test_a_notice_written_as_cap_reads_back_as_the_same_notice(api: Api) -> None:
    body = {
        "topic": "air-quality",
        "title": "重污染天气黄色预警",
        "body": "预计明日出现重污染天气。\n请减少户外活动。",
        "severity": "moderate",
        "target": {"areas": [TOWN_A, VILLAGE_A1]},
        "expires_at": "2030-01-02T08:00:00+08:00",
    }
    status, native = await api.call("POST", "/api/v1/notices", json=body)
    assert status == 201
    status, exported = await api.call("GET", f"/api/v1/notices/{native['id']}/cap.xml")
    assert status == 200
    alert = read_alert(exported.encode())
    assert alert.identifier == f"notice-{native['id']}" and alert.sent.endswith("+08:00")
    assert [area.geocodes for area in alert.infos[0].areas] == [(("GB/T 2260", TOWN_A),), (("GB/T 2260", VILLAGE_A1),)]
    status, imported = await api.call("POST", "/api/v1/cap", data=exported.encode(), headers=CAP_XML)
    assert status == 201, imported
    same = ("topic", "title", "body", "severity", "expires_at")
    assert {k: imported[k] for k in same} == {k: native[k] for k in same}
    assert imported["target"]["areas"] == [TOWN_A]  # the village lies in the town, which covers it


async def test_an_alert_that_breaks_the_schema_is_refused_with_the_schema_error(api: Api) -> None:
    before = await _count_notices(api)
    broken = changle_alert("bad-1").replace(b"<urgency>Expected", b"<urgency>Soon")
    status, problem = await api.call("POST", "/api/v1/cap", data=broken, headers=CAP_XML)
    assert status == 422
    assert problem["type"] == "/problems/invalid-cap"
    assert problem["errors"][0]["loc"] == "/alert/info/urgency"
    assert "Immediate" in problem["errors"][0]["msg"]
    out_of_order = changle_alert("bad-2").replace(b"<scope>Public</scope>", b"").replace(
        b"<status>Actual</status>", b"<status>Actual</status><scope>Public</scope><scope>Public</scope>"
    )
    status, problem = await api.call("POST", "/api/v1/cap", data=out_of_order, headers=CAP_XML)
    assert status == 422 and problem["errors"][0]["loc"].startswith("/alert")
    entity = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><alert>&x;</alert>'
    for data in (b"not xml", entity, b"<alert/>"):
        status, problem = await api.call("POST", "/api/v1/cap", data=data, headers=CAP_XML)
        assert (status, problem["type"]) == (422, "/problems/invalid-cap"), problem
    status, _ = await api.call("POST", "/api/v1/cap", data=changle_alert("ok"), headers={"Content-Type": "text/plain"})
    assert status == 415
    exercise = changle_alert("drill").replace(b"<status>Actual", b"<status>Exercise")
    status, problem = await api.call("POST", "/api/v1/cap", data=exercise, headers=CAP_XML)
    assert (status, problem["errors"][0]["loc"]) == (422, "alert.status")
    assert await _count_notices(api) == before


async def test_update_replaces_and_cancel_stops_the_referenced_notice(api: Api) -> None:
    status, first = await api.call("POST", "/api/v1/cap", data=changle_alert("hp-1"), headers=CAP_XML)
    assert status == 201 and first["state"] == "pending_approval"
    assert first["topic"] == "air-quality" and first["severity"] == "severe"
    assert ChannelKind.FEED.value in first["channels"] and first["public"] is True
    ref = "370725000000@12379.cn,hp-1,2026-11-29T16:00:00+08:00"
    status, update = await api.call(
        "POST", "/api/v1/cap", data=changle_alert("hp-2", msg_type="Update", references=ref), headers=CAP_XML
    )
    assert status == 201 and update["references"] == first["id"]
    status, replaced = await api.call("GET", f"/api/v1/notices/{first['id']}")
    assert replaced["state"] == "cancelled"  # nobody had approved it: the update takes its place
    status, approved = await api.call("POST", f"/api/v1/notices/{update['id']}/approve", key="env-approver")
    assert (status, approved["state"]) == (200, "approved")
    ref2 = "370725000000@12379.cn,hp-2,2026-11-29T16:00:00+08:00"
    cancel = changle_alert("hp-3", msg_type="Cancel", references=ref2)
    status, cancelled = await api.call("POST", "/api/v1/cap", data=cancel, headers=CAP_XML)
    assert (status, cancelled["id"], cancelled["state"]) == (200, update["id"], "cancelled")
    status, again = await api.call("POST", "/api/v1/cap", data=cancel, headers=CAP_XML)
    assert (status, again["id"]) == (200, update["id"])
    unknown = changle_alert("hp-4", msg_type="Cancel", references="x@y,never-sent,2026-11-29T16:00:00+08:00")
    status, problem = await api.call("POST", "/api/v1/cap", data=unknown, headers=CAP_XML)
    assert (status, problem["errors"][0]["loc"]) == (422, "alert.references")


async def test_a_repeated_identifier_answers_with_the_same_notice_and_only_to_its_department(api: Api) -> None:
    status, first = await api.call("POST", "/api/v1/cap", data=changle_alert("rep-1"), headers=CAP_XML)
    assert status == 201
    before = await _count_notices(api)
    status, again = await api.call("POST", "/api/v1/cap", data=changle_alert("rep-1"), headers=CAP_XML)
    assert (status, again["id"]) == (200, first["id"])
    status, _ = await api.call("POST", "/api/v1/cap", key="civ-issuer", data=changle_alert("rep-1"), headers=CAP_XML)
    assert status == 409
    assert await _count_notices(api) == before


async def test_areas_by_geocode_polygon_and_circle(api: Api) -> None:
    province = "<geocode><valueName>GB/T 2260</valueName><value>370000</value></geocode>"
    status, notice = await api.call("POST", "/api/v1/cap", data=changle_alert("g-1", area=province), headers=CAP_XML)
    assert (status, notice["target"]["areas"]) == (201, [COUNTY])
    await api.store.upsert_area_centroids([(COUNTY, *SEAT, "test")])
    lat, lon = SEAT
    corners = [(lat - 0.1, lon - 0.1), (lat - 0.1, lon + 0.1), (lat + 0.1, lon + 0.1), (lat + 0.1, lon - 0.1)]
    square = " ".join(f"{a},{b}" for a, b in [*corners, corners[0]])
    polygon = f"<polygon>{square}</polygon>"
    status, notice = await api.call("POST", "/api/v1/cap", data=changle_alert("g-2", area=polygon), headers=CAP_XML)
    assert (status, notice["target"]["areas"]) == (201, [COUNTY])
    far = f"<circle>{lat + 1},{lon} 10</circle>"  # 111 km north of the seat
    status, problem = await api.call("POST", "/api/v1/cap", data=changle_alert("g-3", area=far), headers=CAP_XML)
    assert (status, problem["errors"][0]["loc"]) == (422, "alert.info.area")
    near = f"<circle>{lat + .05},{lon} 10</circle>"  # 5.6 km north
    status, notice = await api.call("POST", "/api/v1/cap", data=changle_alert("g-4", area=near), headers=CAP_XML)
    assert (status, notice["target"]["areas"]) == (201, [COUNTY])


def test_centroids_select_towns_and_parents_cover_children() -> None:
    centroids = {TOWN_A: (36.70, 118.80), TOWN_B: (36.60, 118.90), VILLAGE_A1: (36.71, 118.81)}
    known = [COUNTY, TOWN_A, TOWN_B, VILLAGE_A1]
    around_a = CapArea(description="a", polygons=("36.65,118.75 36.65,118.85 36.75,118.85 36.75,118.75 36.65,118.75",))
    assert match_areas([around_a], known, centroids, COUNTY) == [TOWN_A]
    both = CapArea(description="b", circles=("36.65,118.85 20",))
    assert match_areas([both], known, centroids, COUNTY) == [TOWN_A, TOWN_B]
    padded = CapArea(description="c", geocodes=(("X", "370725002000"), ("X", VILLAGE_A1), ("SAME", "006037")))
    assert match_areas([padded], known, centroids, COUNTY) == [VILLAGE_A1, TOWN_B]


def _square(centre: tuple[float, float], half: float) -> str:
    lat, lon = centre
    corners = [(lat - half, lon - half), (lat - half, lon + half), (lat + half, lon + half), (lat + half, lon - half)]
    return "<polygon>" + " ".join(f"{a},{b}" for a, b in [*corners, corners[0]]) + "</polygon>"


async def test_a_polygon_over_one_town_reaches_that_town_by_the_shipped_points(api: Api) -> None:
    """The demo county's shipped points (the county seat and four towns' seats, GeoNames): a polygon that
    covers 乔官镇 and not 鄌郚镇 reaches 乔官镇 alone, not the whole county; one over every point reaches the
    county; one over the county seat alone no longer stands for the county."""
    await api.store.upsert_areas(read_areas())
    points = {code: (lat, lon) for code, lat, lon, _ in read_centroids()}
    await api.store.upsert_area_centroids(read_centroids())
    qiaoguan, tangwu = points["370725107"], points["370725108"]
    assert distance_km(qiaoguan, tangwu) > 10  # two towns apart: a 3 km square cannot hold both
    around = _square(qiaoguan, 0.03)
    status, notice = await api.call("POST", "/api/v1/cap", data=changle_alert("p-1", area=around), headers=CAP_XML)
    assert (status, notice["target"]["areas"]) == (201, ["370725107"]), notice
    circle = f"<circle>{tangwu[0]},{tangwu[1]} 5</circle>"  # 鄌郚 and none of the other points
    status, notice = await api.call("POST", "/api/v1/cap", data=changle_alert("p-2", area=circle), headers=CAP_XML)
    assert (status, notice["target"]["areas"]) == (201, ["370725108"]), notice
    whole = _square(COUNTY_SEAT, 0.5)  # covers the seat and every town's point
    status, notice = await api.call("POST", "/api/v1/cap", data=changle_alert("p-3", area=whole), headers=CAP_XML)
    assert (status, notice["target"]["areas"]) == (201, [COUNTY]), notice
    seat_only = _square(COUNTY_SEAT, 0.02)
    status, problem = await api.call("POST", "/api/v1/cap", data=changle_alert("p-4", area=seat_only), headers=CAP_XML)
    assert (status, problem["errors"][0]["loc"]) == (422, "alert.info.area")


def test_a_parent_is_matched_only_when_all_its_points_are_covered() -> None:
    centroids = {COUNTY: (36.70, 118.83), TOWN_A: (36.56, 118.88), TOWN_B: (36.45, 118.86)}
    known = [COUNTY, TOWN_A, TOWN_B]
    seat_and_a = CapArea(description="a", circles=("36.63,118.85 10",))
    assert match_areas([seat_and_a], known, centroids, COUNTY) == [TOWN_A]
    everything = CapArea(description="b", circles=("36.58,118.85 20",))
    assert match_areas([everything], known, centroids, COUNTY) == [COUNTY]


def test_a_dtd_is_refused_before_anything_expands() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><alert>&b;</alert>'
    with pytest.raises(InvalidCap):
        read_alert(bomb)


def _signed_alert(identifier: str, depth: int) -> bytes:
    """An alert with an XML signature whose ``ds:Object`` holds ``depth`` nested elements: the schema takes any
    content there (processContents lax), and validating it recurses once a level."""
    signature = (
        '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
        '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
        '<ds:SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/><ds:Reference>'
        '<ds:DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/><ds:DigestValue>AA==</ds:DigestValue>'
        "</ds:Reference></ds:SignedInfo><ds:SignatureValue>AA==</ds:SignatureValue>"
        f"<ds:Object>{'<x>' * depth}{'</x>' * depth}</ds:Object></ds:Signature>"
    )
    return changle_alert(identifier).replace(b"</alert>", signature.encode() + b"</alert>")


async def test_a_deeply_nested_alert_is_refused_not_a_500(api: Api) -> None:
    assert read_alert(_signed_alert("signed", 3)).identifier == "signed"  # a signature is no reason to refuse
    before = await _count_notices(api)
    for depth in (2000, 100_000):
        status, problem = await api.call(
            "POST", "/api/v1/cap", data=_signed_alert(f"deep-{depth}", depth), headers=CAP_XML
        )
        assert (status, problem["type"]) == (422, "/problems/invalid-cap"), problem
        assert "nested" in problem["errors"][0]["msg"]
    assert await _count_notices(api) == before


@pytest.mark.parametrize(
    "shape",
    [
        "<circle>inf,118.8 10</circle>",  # float() reads inf and 1e400: the distance's sine raised "math domain error"
        "<circle>36.7,1e400 10</circle>",
        "<circle>nan,118.8 10</circle>",
        "<circle>136.7,118.8 10</circle>",  # no latitude past the poles
        "<circle>36.7,118.8 -10</circle>",
        "<polygon>inf,118.7 36.8,inf 36.6,118.9 inf,118.7</polygon>",  # its NaN crossings "covered" the county
    ],
)
async def test_a_shape_off_the_globe_reaches_nothing_and_is_no_500(api: Api, shape: str) -> None:
    """CAP's circle and polygon are plain strings in the schema: what does not read as points on the globe is
    no shape, as an unreadable one is, and the alert then names no area in the county."""
    await api.store.upsert_area_centroids([(COUNTY, *SEAT, "test")])
    status, problem = await api.call("POST", "/api/v1/cap", data=changle_alert("off-globe", area=shape),
                                     headers=CAP_XML)  # fmt: skip
    assert (status, problem["errors"][0]["loc"]) == (422, "alert.info.area"), problem


EXPIRES = b"<expires>2030-12-02T00:00:00+08:00</expires>"
NAMED = "<event>重污染天气</event>".encode(), "<headline>重污染天气橙色预警</headline>".encode()


@pytest.mark.parametrize(
    ("alert", "loc"),
    [  # the notice's checks refused what the schema took, and the parser an unknown encoding: each was a 500
        (changle_alert("y1").replace(EXPIRES, b"<expires>0001-01-01T00:00:00+14:00</expires>"), "alert.info.expires"),
        (changle_alert("y9").replace(EXPIRES, b"<expires>9999-12-31T23:59:59-14:00</expires>"), "alert.info.expires"),
        (changle_alert("enc").replace(b'encoding="UTF-8"', b'encoding="x-no-such-charset"'), "/"),  # LookupError
    ],
)
async def test_an_alert_no_notice_can_be_made_of_is_a_422(api: Api, alert: bytes, loc: str) -> None:
    before = await _count_notices(api)
    status, problem = await api.call("POST", "/api/v1/cap", data=alert, headers=CAP_XML)
    assert status == 422, problem
    assert problem["errors"][0]["loc"] == loc, problem
    assert await _count_notices(api) == before


async def test_an_identifier_standing_in_for_a_missing_headline_is_made_a_title(api: Api) -> None:
    """CAP's identifier admits any character but blanks, comma, < and &: a format character in it (U+202E)
    would fail the notice's title check when neither headline nor event gives the title."""
    alert = changle_alert("x\u202ey").replace(NAMED[0], b"<event> </event>").replace(NAMED[1], b"")
    status, notice = await api.call("POST", "/api/v1/cap", data=alert, headers=CAP_XML)
    assert (status, notice["title"]) == (201, "x y"), notice
