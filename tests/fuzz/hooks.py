"""Schemathesis hooks for tests/test_schemathesis.py.

A random topic code is a correct 422, so generated notice drafts would never be created and the stateful
phase would never walk a notice's life cycle. Half of the positive drafts therefore name the demo county's
real topic and area (keeping the generated title), so that the links from a created notice are followed.
"""

from __future__ import annotations

import schemathesis
from schemathesis import Case, HookContext

REAL_DRAFT = {"topic": "air-quality", "body": "空气质量预警", "target": {"areas": ["370725"]}, "channels": ["sms"]}


@schemathesis.hook("map_case").apply_to(operation_id="create_notice")
def realistic_notice(context: HookContext, case: Case) -> Case:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or not isinstance(case.body, dict):
        return case
    title = case.body.get("title")
    if isinstance(title, str) and len(title) % 2 == 0:
        case.body = {**REAL_DRAFT, "title": title}
    return case
