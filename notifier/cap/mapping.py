"""A CAP alert as a notice, and a notice as a CAP alert.

Import (``notice_from_alert``) reads one ``<info>``: the first in Chinese (``zh``, ``zh-CN``...), else the
first. ``headline`` (else ``event``) is the title; ``description`` and ``instruction`` the body;
``severity`` maps Extreme, Severe, Moderate, Minor to the notice's severity of the same name and Unknown to
``info``; ``expires`` is the notice's ``expires_at``; its areas are matched to the county's areas
(``notifier.cap.areas``). The notice goes to the residents of those areas on the default channels plus
``feed`` (so it is public) and carries the whole alert, which the export gives back unchanged.

Export (``alert_from_notice``) of a notice that did not come from CAP writes one ``<info>`` in zh-CN: the
topic's name as event, the severity mapped back (``info`` is Unknown), urgency Immediate for severe and
extreme notices and Expected otherwise, certainty Likely, the title as headline, the body as description,
and one ``<area>`` per target area with its name and a ``geocode`` (valueName ``GB/T 2260``) per code.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta, timezone

from notifier.cap.document import CapAlert, CapArea, CapInfo
from notifier.domain.enums import ChannelKind, Severity
from notifier.domain.models import Notice, NoticeIn, Target

CHINA_TIME = timezone(timedelta(hours=8))
GEOCODE_NAME = "GB/T 2260"  # the division codes of GB/T 2260 and the statistical tables (9 and 12 digits)
SEVERITY_FROM_CAP = {
    "Extreme": Severity.EXTREME,
    "Severe": Severity.SEVERE,
    "Moderate": Severity.MODERATE,
    "Minor": Severity.MINOR,
    "Unknown": Severity.INFO,
}
SEVERITY_TO_CAP = {severity: cap for cap, severity in SEVERITY_FROM_CAP.items()}
# the topic a CAP category falls under when the department issues on it (notice topics of the demo county)
TOPIC_OF_CATEGORY = {
    "Env": "air-quality",
    "Health": "public-health",
    **dict.fromkeys(
        ("Met", "Geo", "Safety", "Security", "Rescue", "Fire", "Transport", "Infra", "CBRNE"), "disaster-relief"
    ),
}
CATEGORY_OF_TOPIC = {"air-quality": "Env", "public-health": "Health", "disaster-relief": "Safety"}
IMPORT_CHANNELS = [ChannelKind.WECHAT, ChannelKind.SMS, ChannelKind.WECOM, ChannelKind.EMAIL, ChannelKind.FEED]
TITLE_MAX, BODY_MAX = 200, 10000


def choose_info(alert: CapAlert) -> CapInfo | None:
    for info in alert.infos:
        if info.language.lower().startswith("zh"):
            return info
    return alert.infos[0] if alert.infos else None


def choose_topic(info: CapInfo, department_topics: list[str]) -> str | None:
    """The topic of the first category the department issues on, else the department's first topic."""
    for category in info.categories:
        topic = TOPIC_OF_CATEGORY.get(category)
        if topic in department_topics:
            return topic
    return department_topics[0] if department_topics else None


def _single_line(text: str) -> str:
    cleaned = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    return " ".join(cleaned.split())


def _multi_line(text: str) -> str:
    lines = (_single_line(line) for line in text.replace("\r", "\n").split("\n"))
    return "\n".join(lines).strip()


def cap_time(text: str | None) -> datetime | None:
    """A CAP DateTime (``-00:00`` for UTC included) as an aware datetime."""
    return None if text is None else datetime.fromisoformat(text)


def notice_from_alert(
    alert: CapAlert, info: CapInfo, topic: str, areas: list[str], references: int | None
) -> NoticeIn:
    title = _single_line(info.headline or info.event)[:TITLE_MAX] or _single_line(info.event)[:TITLE_MAX]
    parts = [_multi_line(text) for text in (info.description, info.instruction) if text]
    body = "\n\n".join(part for part in parts if part)[:BODY_MAX] or title
    return NoticeIn(
        topic=topic,
        title=title or _single_line(alert.identifier)[:TITLE_MAX],
        body=body,
        severity=SEVERITY_FROM_CAP.get(info.severity, Severity.INFO),
        target=Target(areas=areas),
        channels=IMPORT_CHANNELS,
        expires_at=cap_time(info.expires),
        references=references,
        public=True,
    )


def cap_datetime(moment: datetime) -> str:
    """CAP's DateTime: seconds, a numeric offset (China time), never ``Z``."""
    return moment.astimezone(CHINA_TIME).replace(microsecond=0).isoformat()


def alert_from_notice(
    notice: Notice, *, sender: str, event: str, areas: dict[str, str], earlier: str | None
) -> CapAlert:
    """A notice that did not come from CAP as an alert of ``sender`` covering ``areas`` (code: name);
    ``earlier`` is the reference triple of the notice it updates."""
    severity = SEVERITY_TO_CAP[notice.severity]
    cap_areas = tuple(
        CapArea(description=name, geocodes=((GEOCODE_NAME, code),)) for code, name in areas.items()
    )
    info = CapInfo(
        language="zh-CN",
        categories=(CATEGORY_OF_TOPIC.get(notice.topic, "Other"),),
        event=event,
        urgency="Immediate" if notice.severity.is_urgent else "Expected",
        severity=severity,
        certainty="Likely",
        expires=cap_datetime(notice.expires_at) if notice.expires_at else None,
        sender_name=notice.department,
        headline=notice.title,
        description=notice.body,
        areas=cap_areas,
    )
    return CapAlert(
        identifier=f"notice-{notice.id}",
        sender=sender,
        sent=cap_datetime(notice.created_at),
        status="Actual",
        msg_type="Update" if earlier else "Alert",
        scope="Public",
        references=(earlier,) if earlier else (),
        infos=(info,),
    )
