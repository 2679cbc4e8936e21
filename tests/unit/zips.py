"""Build zip files in memory, as a browser upload would hand them to the app."""

from __future__ import annotations

import io
import zipfile


def make_zip(files: dict[str, bytes]) -> bytes:
    """A zip archive holding `files` (name -> bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()
