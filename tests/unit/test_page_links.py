"""st.page_link targets resolve from both entries: the local app.py and the Cloud entry in cloud/."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_page_links_are_absolute_so_the_cloud_entry_finds_them():
    """st.page_link resolves a relative script path against the entry's folder, and the Cloud entry is
    cloud/streamlit_app.py: "app_pages/x.py" raised StreamlitPageNotFoundError there."""
    relative = re.compile(r"page_link\(\s*f?[\"']app_pages/")
    found = [str(p.relative_to(ROOT)) for folder in ("ui", "app_pages") for p in (ROOT / folder).rglob("*.py")
             if relative.search(p.read_text())]
    assert found == []
