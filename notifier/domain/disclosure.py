"""The disclosure plan's domains: the columns of the public notices page (``/public/notices``).

The county's disclosure plan names seven domains for grassroots government information; each notice that a
department makes public is shown under one of them. A notice's ``domain`` defaults to the one of its
topic (the demo's topics map one to one); a department may name another.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DisclosureDomain(StrEnum):
    POVERTY_ALLEVIATION = "poverty-alleviation"  # 脱贫攻坚
    SOCIAL_ASSISTANCE = "social-assistance"  # 社会救助和社会福利
    EDUCATION = "education"  # 教育
    HEALTH = "health"  # 基本医疗卫生
    ENVIRONMENT = "environment"  # 环境保护
    DISASTER_RELIEF = "disaster-relief"  # 灾害事故救援
    CULTURE_SPORTS = "culture-sports"  # 公共文化体育


@dataclass(frozen=True)
class DomainInfo:
    code: DisclosureDomain
    name: str
    topic: str  # the demo topic whose notices fall under it by default


DOMAINS: tuple[DomainInfo, ...] = (
    DomainInfo(DisclosureDomain.POVERTY_ALLEVIATION, "脱贫攻坚", "poverty-alleviation"),
    DomainInfo(DisclosureDomain.SOCIAL_ASSISTANCE, "社会救助和社会福利", "social-assistance"),
    DomainInfo(DisclosureDomain.EDUCATION, "教育", "education"),
    DomainInfo(DisclosureDomain.HEALTH, "基本医疗卫生", "public-health"),
    DomainInfo(DisclosureDomain.ENVIRONMENT, "环境保护", "air-quality"),
    DomainInfo(DisclosureDomain.DISASTER_RELIEF, "灾害事故救援", "disaster-relief"),
    DomainInfo(DisclosureDomain.CULTURE_SPORTS, "公共文化体育", "culture-sports"),
)
DOMAIN_NAMES = {info.code.value: info.name for info in DOMAINS}


def domain_of_topic(topic: str) -> DisclosureDomain | None:
    """The default domain of a topic; None for a topic the plan does not name."""
    for info in DOMAINS:
        if info.topic == topic:
            return info.code
    return None
