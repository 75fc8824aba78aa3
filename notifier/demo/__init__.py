"""Demo data of one county (Changle, Weifang, Shandong: 370725) for ``notifier serve --demo``.

``await load_demo(store)`` loads its areas, topics, groups, departments (with the topics each may issue
on) and about 3000 fictitious residents; running it again changes nothing. The data files live in
``notifier/demo/data/`` (see the README there).
"""

from notifier.demo.loader import DemoSummary, load_demo, read_areas, read_catalog

__all__ = ["DemoSummary", "load_demo", "read_areas", "read_catalog"]
