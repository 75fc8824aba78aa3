"""Write notifier/demo/data/residents.csv: about 3000 fictitious residents of Changle County.

Deterministic (fixed seed, the standard library's ``random`` only), so running it again gives the same
file. The residents are spread over the 392 village-level units, more of them in the urban communities
of the subdistricts. Group shares follow the brief of a county civil-affairs roster: dibao ~4%,
extreme-poverty ~1%, disabled ~3%, elderly-alone ~15%, pupils-parents ~20%, orphans ~0.3% (their
guardians). Not everyone has every channel: elderly residents living alone mostly have a phone only, and
about 5% of all residents have no personal channel at all (the village notice board reaches them).

    python scripts/generate_demo_residents.py [--count 3000] [--seed 370725] [--out PATH]

The CSV has the columns of ``notifier subscribers import``.
"""

from __future__ import annotations

import argparse
import csv
import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import phonenumbers

from subscribers.rows import COLUMNS  # the import format the CSV must follow

DATA = Path(__file__).resolve().parent.parent / "notifier" / "demo" / "data"
TOPICS = (
    "air-quality",
    "social-assistance",
    "disaster-relief",
    "education",
    "public-health",
    "culture-sports",
    "poverty-alleviation",
)

# Common surnames of Shandong with rough weights, and their pinyin.
SURNAMES = {
    "王": ("wang", 14), "张": ("zhang", 11), "李": ("li", 10), "刘": ("liu", 9), "赵": ("zhao", 5),
    "孙": ("sun", 5), "陈": ("chen", 4), "马": ("ma", 4), "杨": ("yang", 4), "徐": ("xu", 3),
    "高": ("gao", 3), "田": ("tian", 3), "郭": ("guo", 3), "于": ("yu", 3), "吕": ("lv", 2),
    "韩": ("han", 2), "周": ("zhou", 2), "朱": ("zhu", 2), "宋": ("song", 2), "董": ("dong", 2),
    "曹": ("cao", 2), "秦": ("qin", 2), "崔": ("cui", 2), "魏": ("wei", 2), "袁": ("yuan", 1),
    "邱": ("qiu", 1), "尹": ("yin", 1), "葛": ("ge", 1), "鞠": ("ju", 1), "逄": ("pang", 1),
}  # fmt: skip

# Given names by generation and sex: (characters, pinyin syllables).
GIVEN = {
    ("old", "m"): "德福 de-fu|建国 jian-guo|国庆 guo-qing|振华 zhen-hua|玉亭 yu-ting|洪 hong|学文 xue-wen|"
    "永福 yong-fu|树林 shu-lin|长海 chang-hai|广田 guang-tian|明 ming|庆祥 qing-xiang|连升 lian-sheng|"
    "守礼 shou-li|文顺 wen-shun|宝山 bao-shan|福贵 fu-gui",
    ("old", "f"): "秀英 xiu-ying|桂兰 gui-lan|玉兰 yu-lan|凤英 feng-ying|秀兰 xiu-lan|淑珍 shu-zhen|桂英 gui-ying|"
    "秀珍 xiu-zhen|兰 lan|芳 fang|玉梅 yu-mei|金花 jin-hua|素梅 su-mei|春兰 chun-lan|翠花 cui-hua|玉芝 yu-zhi",
    ("mid", "m"): "伟 wei|强 qiang|磊 lei|军 jun|勇 yong|涛 tao|斌 bin|海涛 hai-tao|建华 jian-hua|志强 zhi-qiang|"
    "文杰 wen-jie|晓东 xiao-dong|鹏 peng|刚 gang|新民 xin-min|立新 li-xin|永刚 yong-gang|振宇 zhen-yu",
    ("mid", "f"): "丽 li|静 jing|敏 min|燕 yan|娟 juan|霞 xia|红梅 hong-mei|丽娜 li-na|晓燕 xiao-yan|海燕 hai-yan|"
    "婷 ting|玲 ling|春梅 chun-mei|丽华 li-hua|秀芳 xiu-fang|美玲 mei-ling|雪梅 xue-mei",
    ("young", "m"): "浩 hao|宇 yu|子豪 zi-hao|浩然 hao-ran|宇航 yu-hang|博文 bo-wen|俊杰 jun-jie|鑫 xin|晨 chen|"
    "一鸣 yi-ming|家豪 jia-hao|天宇 tian-yu|明轩 ming-xuan",
    ("young", "f"): "欣怡 xin-yi|雨欣 yu-xin|佳怡 jia-yi|梦瑶 meng-yao|思雨 si-yu|雪 xue|悦 yue|晓雪 xiao-xue|"
    "诗涵 shi-han|文静 wen-jing|雅琪 ya-qi|梦琪 meng-qi",
}  # fmt: skip

MOBILE_PREFIXES = (
    "135 138 139 150 151 152 157 158 159 182 187 188 130 131 132 155 156 185 186 133 153 180 189 177".split()
)
OPENID_ALPHABET = string.ascii_letters + string.digits + "_-"
OPENID_ACCOUNT = "oQ3Hv"  # openids of one official account share their first characters
EMAIL_DOMAINS = (("qq.com", 6), ("163.com", 4), ("126.com", 2), ("sina.com", 1), ("139.com", 1))
QUIET_HOURS = (("22:00-07:00", 8), ("21:30-06:30", 1), ("23:00-07:00", 1))


@dataclass
class Resident:
    number: int
    area: str
    age: int = 0
    sex: str = "m"
    groups: list[str] = field(default_factory=list)
    name: str = ""
    pinyin: tuple[str, str] = ("", "")  # surname, given name
    phone: str = ""
    email: str = ""
    openid: str = ""
    wecom: str = ""
    topics: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    quiet: str = ""


def read_villages(path: Path) -> list[tuple[str, str, str]]:
    """(code, name, name of its town) of every village-level unit."""
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    towns = {r["code"]: r["name"] for r in rows if r["level"] == "town"}
    return [(r["code"], r["name"], towns[r["parent"]]) for r in rows if r["level"] == "village"]


def village_weight(name: str, town: str) -> float:
    """Urban residents' committees (社区) are bigger than villages, most of all in the subdistricts (街道)."""
    community = "社区" in name or "居民委员会" in name
    if town.endswith("街道"):
        return 4.0 if community else 1.5
    return 2.5 if community else 1.0


def spread(rng: random.Random, villages: list[tuple[str, str, str]], count: int) -> list[str]:
    """Area codes of ``count`` residents: two in every village, the rest weighted by village size."""
    areas = [code for code, _, _ in villages for _ in range(2)]
    weights = [village_weight(name, town) for _, name, town in villages]
    areas += rng.choices([code for code, _, _ in villages], weights=weights, k=count - len(areas))
    return sorted(areas)


def assign_groups(rng: random.Random, people: list[Resident]) -> None:
    """Exact group shares; ages follow from them (the elderly alone are old, parents of pupils 28-50)."""
    n = len(people)
    index = list(range(n))
    rng.shuffle(index)
    alone = set(index[: round(n * 0.15)])
    parents = set(index[len(alone) : len(alone) + round(n * 0.20)])
    others = [i for i in range(n) if i not in alone and i not in parents]
    extreme = set(rng.sample(sorted(alone), round(n * 0.007)) + rng.sample(others, round(n * 0.003)))
    dibao = set(rng.sample([i for i in range(n) if i not in extreme], round(n * 0.04)))
    disabled = set(rng.sample(range(n), round(n * 0.03)))
    orphans = set(rng.sample([i for i in others if i not in extreme], max(1, round(n * 0.003))))
    for i, person in enumerate(people):
        person.sex = rng.choice("mf")
        if i in alone:
            person.age = rng.randint(65, 92)
        elif i in parents:
            person.age = rng.randint(28, 50)
        elif i in orphans:
            person.age = rng.randint(30, 70)  # guardians: uncles, aunts, grandparents
        else:
            person.age = rng.choice(
                [rng.randint(18, 29), rng.randint(30, 59), rng.randint(30, 59), rng.randint(60, 85)]
            )
        for code, members in (
            ("dibao", dibao),
            ("extreme-poverty", extreme),
            ("disabled", disabled),
            ("elderly-alone", alone),
            ("pupils-parents", parents),
            ("orphans", orphans),
        ):
            if i in members:
                person.groups.append(code)


def generation(age: int) -> str:
    return "old" if age >= 60 else "mid" if age >= 30 else "young"


def pick_name(rng: random.Random, person: Resident) -> None:
    surnames = list(SURNAMES)
    surname = rng.choices(surnames, weights=[SURNAMES[s][1] for s in surnames])[0]
    given, syllables = rng.choice(GIVEN[(generation(person.age), person.sex)].split("|")).split()
    person.name = surname + given
    person.pinyin = (SURNAMES[surname][0], syllables.replace("-", ""))


def new_phone(rng: random.Random, taken: set[str]) -> str:
    while True:
        number = rng.choice(MOBILE_PREFIXES) + "".join(rng.choice(string.digits) for _ in range(8))
        if number in taken:
            continue
        parsed = phonenumbers.parse(number, "CN")
        if phonenumbers.is_valid_number(parsed) and phonenumbers.number_type(parsed) in (
            phonenumbers.PhoneNumberType.MOBILE,
            phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        ):
            taken.add(number)
            return number


def unique(taken: set[str], make: Callable[[], str]) -> str:
    """A value of ``make()`` not yet taken (``make`` must be random)."""
    while True:
        value = make()
        if value not in taken:
            taken.add(value)
            return value


def wecom_userid(person: Resident, taken: set[str]) -> str:
    """WeCom userids as an administrator types them: the name in pinyin, numbered when taken (WangWei2)."""
    base = person.pinyin[0].capitalize() + person.pinyin[1].capitalize()
    value, n = base, 1
    while value in taken:
        n += 1
        value = f"{base}{n}"
    taken.add(value)
    return value


def new_openid(rng: random.Random, taken: set[str]) -> str:
    return unique(taken, lambda: OPENID_ACCOUNT + "".join(rng.choices(OPENID_ALPHABET, k=23)))


def email_for(rng: random.Random, person: Resident) -> str:
    domain = rng.choices([d for d, _ in EMAIL_DOMAINS], weights=[w for _, w in EMAIL_DOMAINS])[0]
    surname, given = person.pinyin
    if domain == "qq.com" and rng.random() < 0.6:
        return f"{rng.randint(10_000_000, 3_999_999_999)}@qq.com"  # a QQ number
    birth = 2025 - person.age
    local = rng.choice(
        [f"{surname}{given}", f"{surname}.{given}", f"{surname}{given}{birth}", f"{given}{surname}{rng.randint(1, 99)}"]
    )
    return f"{local}@{domain}"


def assign_contacts(rng: random.Random, people: list[Resident]) -> None:
    """Who has which channel: see the module docstring."""
    phones: set[str] = set()
    openids: set[str] = set()
    wecoms: set[str] = set()
    emails: set[str] = set()
    alone = [p for p in people if "elderly-alone" in p.groups]
    other_old = [p for p in people if p.age >= 65 and "elderly-alone" not in p.groups]
    unreachable = {id(p) for p in rng.sample(alone, round(len(people) * 0.04))}
    unreachable |= {id(p) for p in rng.sample(other_old, round(len(people) * 0.01))}
    for person in people:
        if id(person) in unreachable:
            continue
        old = person.age >= 65
        if "elderly-alone" in person.groups:
            person.phone = new_phone(rng, phones)
            if rng.random() < 0.08:  # children set up WeChat for some of them
                person.openid = new_openid(rng, openids)
            continue
        if rng.random() < (0.85 if old else 0.96):
            person.phone = new_phone(rng, phones)
        if rng.random() < (0.35 if old else 0.70):
            person.openid = new_openid(rng, openids)
        if not old and rng.random() < 0.10:  # village cadres, teachers, staff on the county's WeCom
            person.wecom = wecom_userid(person, wecoms)
        if person.age < 55 and rng.random() < 0.12:
            person.email = unique(emails, partial(email_for, rng, person))
        if not (person.phone or person.openid or person.wecom or person.email):
            person.phone = new_phone(rng, phones)


def assign_preferences(rng: random.Random, person: Resident) -> None:
    must: list[str] = []
    if {"dibao", "extreme-poverty", "disabled", "orphans"} & set(person.groups):
        must.append("social-assistance")
    if "extreme-poverty" in person.groups or ("dibao" in person.groups and rng.random() < 0.5):
        must.append("poverty-alleviation")
    if "pupils-parents" in person.groups:
        must.append("education")
    if "elderly-alone" in person.groups:
        must.append(rng.choice(["public-health", "disaster-relief"]))
    wanted = max(rng.randint(1, 4), len(must))
    rest = [t for t in TOPICS if t not in must]
    person.topics = (must + rng.sample(rest, max(0, wanted - len(must))))[:4]
    person.topics.sort(key=TOPICS.index)
    have = {"wechat": person.openid, "sms": person.phone, "wecom": person.wecom, "email": person.email}
    order = ["wechat", "sms", "wecom", "email"] if rng.random() < 0.7 else ["sms", "wechat", "email", "wecom"]
    person.channels = [c for c in order if have[c]]
    if person.channels and rng.random() < (0.6 if person.age >= 60 else 0.12):
        person.quiet = rng.choices([q for q, _ in QUIET_HOURS], weights=[w for _, w in QUIET_HOURS])[0]


def generate(count: int, seed: int) -> list[Resident]:
    rng = random.Random(seed)
    villages = read_villages(DATA / "changle-divisions.csv")
    people = [Resident(number=i + 1, area=area) for i, area in enumerate(spread(rng, villages, count))]
    assign_groups(rng, people)
    for person in people:
        pick_name(rng, person)
    assign_contacts(rng, people)
    for person in people:
        assign_preferences(rng, person)
    return people


def write(people: list[Resident], out: Path) -> None:
    with out.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(COLUMNS)
        for p in people:
            writer.writerow(
                [
                    f"demo-{p.number:06d}",
                    p.name,
                    p.phone,
                    p.email,
                    p.openid,
                    p.wecom,
                    p.area,
                    ";".join(p.groups),
                    ";".join(p.topics),
                    ";".join(p.channels),
                    "zh",
                    p.quiet,
                    "demo",
                ]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=370725)
    parser.add_argument("--out", type=Path, default=DATA / "residents.csv")
    args = parser.parse_args()
    people = generate(args.count, args.seed)
    write(people, args.out)
    no_channel = sum(not p.channels for p in people)
    print(f"wrote {len(people)} residents to {args.out} ({no_channel} without a personal channel)")


if __name__ == "__main__":
    main()
