"""Printed notices: a real notice for a real village of the demo county, checked with poppler and zbar."""

from __future__ import annotations

import asyncio
import ctypes.util
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from channels.bulletin_cups import read_area_names
from channels.bulletin_render import (
    BulletinNotice,
    BulletinRenderer,
    chinese_date,
    paragraphs,
    render_html,
    render_pdf,
    subscribe_url,
)

DIVISIONS = Path(__file__).resolve().parents[1] / "notifier" / "demo" / "data" / "changle-divisions.csv"
VILLAGE = "370725001036"  # 恒盛社区居民委员会, 宝都街道, 昌乐县
PUBLIC_URL = "https://tongzhi.changle.gov.cn"
TITLE = "关于启动重污染天气橙色预警（Ⅱ级）应急响应的通告"
BODY = (
    "受不利气象条件影响，预计12月1日至12月4日我县将出现持续重污染天气过程，空气质量指数（AQI）日均值将超过200，"
    "部分时段超过300，首要污染物为PM2.5。\n"
    "经县重污染天气应急指挥部研究，决定于12月1日12时启动重污染天气橙色预警（Ⅱ级）应急响应。\n"
    "请广大居民减少户外活动，儿童、老年人和患有心脏病、肺病等慢性疾病的人群尽量留在室内；外出时请佩戴口罩。"
    "中小学、幼儿园停止户外活动。\n"
    "禁止露天焚烧秸秆、垃圾和树叶，禁止燃放烟花爆竹。发现违法排污行为，请拨打12345热线举报。"
)


def orange_alert(paper: str = "A4", severity: str = "severe") -> BulletinNotice:
    names = read_area_names(str(DIVISIONS))
    return BulletinNotice(
        title=TITLE,
        body=BODY,
        department_name="潍坊市生态环境局昌乐分局",
        issued_at=datetime(2026, 11, 30, 16, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
        severity=severity,
        area_code=VILLAGE,
        area_name=names[VILLAGE],
        county_name="昌乐县",
        topic="air-quality",
        paper=paper,  # type: ignore[arg-type]
    )


def need_fonts() -> None:
    """Skip (a failure in CI) unless WeasyPrint, a CJK font, HarfBuzz-Subset, poppler and zbar are here."""
    missing = [tool for tool in ("pdftotext", "pdffonts", "pdftoppm", "pdfinfo", "zbarimg") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: install poppler-utils and zbar-tools (scripts/install-peers)")
    pytest.importorskip("weasyprint", reason="pip install weasyprint")
    fonts = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True).stdout
    if "Noto Serif CJK SC" not in fonts:
        pytest.skip("no Noto CJK font: install fonts-noto-cjk (scripts/install-peers)")
    if ctypes.util.find_library("harfbuzz-subset") is None:
        pytest.skip("no libharfbuzz-subset: WeasyPrint would take seconds per page; install libharfbuzz-subset0")


def run(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def notice_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_fonts()
    path = tmp_path_factory.mktemp("bulletin") / "notice.pdf"
    path.write_bytes(render_pdf(orange_alert(), PUBLIC_URL))
    return path


def test_the_village_is_real() -> None:
    assert read_area_names(str(DIVISIONS))[VILLAGE] == "宝都街道 恒盛社区居民委员会"


@pytest.mark.peer("fonts")
def test_text_layer_has_the_exact_chinese_title_and_body(notice_pdf: Path) -> None:
    text = squeeze(run("pdftotext", "-layout", str(notice_pdf), "-"))
    assert squeeze(TITLE) in text
    for paragraph in paragraphs(BODY):
        assert squeeze(paragraph) in text
    printed = ("昌乐县人民政府", "公告", "潍坊市生态环境局昌乐分局", "2026年11月30日", "橙色预警", "扫码订阅本村通知")
    assert all(words in text for words in printed)
    assert "宝都街道恒盛社区居民委员会" in text


@pytest.mark.peer("fonts")
def test_cjk_fonts_are_embedded(notice_pdf: Path) -> None:
    rows = [line.split() for line in run("pdffonts", str(notice_pdf)).splitlines()[2:]]
    cjk = [row for row in rows if "CJK" in row[0]]
    assert cjk, "no CJK font in the PDF"
    assert all(row[-5] == "yes" for row in cjk), f"a CJK font is not embedded: {cjk}"


@pytest.mark.peer("fonts")
def test_page_one_as_png_carries_a_qr_code_for_the_village_and_topic(notice_pdf: Path) -> None:
    assert "Pages:           1" in run("pdfinfo", str(notice_pdf))
    png = notice_pdf.with_name("page1")
    run("pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", str(notice_pdf), str(png))
    decoded = run("zbarimg", "-q", "--raw", f"{png}.png").strip()
    assert decoded == f"{PUBLIC_URL}/subscribe?area={VILLAGE}&topic=air-quality"


@pytest.mark.peer("fonts")
def test_a3_is_the_a4_layout_scaled_to_a3(tmp_path: Path) -> None:
    need_fonts()
    path = tmp_path / "a3.pdf"
    path.write_bytes(render_pdf(orange_alert(paper="A3"), PUBLIC_URL))
    width, height = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+)", run("pdfinfo", str(path))).groups())
    assert abs(width - 841.9) < 1 and abs(height - 1190.6) < 1  # A3 = 297 x 420 mm in points


@pytest.mark.peer("fonts")
async def test_the_pool_renders_while_the_event_loop_keeps_running() -> None:
    need_fonts()
    renderer = BulletinRenderer(PUBLIC_URL, workers=1)
    renderer.start()
    ticks = 0
    rendering = asyncio.ensure_future(renderer.render(orange_alert()))
    try:
        while not rendering.done():
            await asyncio.sleep(0.01)
            ticks += 1
        pdf = rendering.result()
    finally:
        await asyncio.to_thread(renderer.close)
    assert pdf.startswith(b"%PDF-")
    assert ticks > 3, "the event loop was blocked while the notice rendered"


@pytest.mark.parametrize(
    ("severity", "colour", "label"),
    [
        ("minor", "#1f5fbf", "蓝色预警"),
        ("moderate", "#f5c400", "黄色预警"),
        ("severe", "#ee7700", "橙色预警"),
        ("extreme", "#d0021b", "红色预警"),
    ],
)
def test_alerts_carry_their_colour_band(severity: str, colour: str, label: str) -> None:
    html = render_html(orange_alert(severity=severity), PUBLIC_URL)
    assert f"background: {colour}" in html
    assert label in html


def test_information_has_no_band_and_text_is_escaped() -> None:
    notice = orange_alert(severity="info")
    html = render_html(BulletinNotice(**{**notice.__dict__, "title": "<b>停水</b>通知"}), PUBLIC_URL)
    assert 'class="band"' not in html
    assert "&lt;b&gt;停水&lt;/b&gt;通知" in html


def test_helpers() -> None:
    assert paragraphs("第一段。\n\n  第二段。\r\n第三段。") == ["第一段。", "第二段。", "第三段。"]
    assert chinese_date(datetime(2027, 1, 5)) == "2027年1月5日"
    assert (
        subscribe_url("https://x.gov.cn/", orange_alert())
        == "https://x.gov.cn/subscribe?area=370725001036&topic=air-quality"
    )
    no_topic = BulletinNotice(**{**orange_alert().__dict__, "topic": ""})
    assert subscribe_url("https://x.gov.cn", no_topic) == "https://x.gov.cn/subscribe?area=370725001036"


def test_a_town_notice_invites_to_subscribe_for_the_town() -> None:
    village = orange_alert()
    town = BulletinNotice(**{**village.__dict__, "area_code": "370725107", "area_name": "乔官镇"})
    subdistrict = BulletinNotice(**{**village.__dict__, "area_code": "370725001", "area_name": "宝都街道"})
    assert "扫码订阅本村通知" in render_html(village, PUBLIC_URL)
    assert "扫码订阅本镇通知" in render_html(town, PUBLIC_URL)
    assert "扫码订阅本街道通知" in render_html(subdistrict, PUBLIC_URL)
