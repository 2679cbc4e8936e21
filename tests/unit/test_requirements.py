"""The dependency files agree: the Cloud entry's requirements pin exactly what requirements.txt pins,
apart from torch's build (the CPU-only wheel there), and runtime pins stay out of the test file."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[2]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-r"):
            continue
        if " @ " in line:
            name, url = (s.strip() for s in line.split(" @ ", 1))
            wheel = unquote(url.rsplit("/", 1)[-1])  # torch-2.13.0+cpu-cp311-cp311-...whl
            pins[name.lower()] = wheel.split("-")[1]
            continue
        name, version = re.split(r"==", line, maxsplit=1)
        pins[re.sub(r"\[.*\]", "", name).lower()] = version
    return pins


def test_cloud_requirements_pin_the_same_versions_with_cpu_torch():
    root, cloud = _pins(ROOT / "requirements.txt"), _pins(ROOT / "cloud" / "requirements.txt")
    assert set(root) == set(cloud)
    assert {k: v for k, v in root.items() if k != "torch"} == {k: v for k, v in cloud.items() if k != "torch"}
    assert cloud["torch"] == root["torch"] + "+cpu"
    assert "cp311" in (ROOT / "cloud" / "requirements.txt").read_text()  # Python 3.11, as the README says


def test_every_pin_is_exact_and_tools_stay_out_of_the_runtime_file():
    runtime = (ROOT / "requirements.txt").read_text()
    for tool in ("pytest", "playwright", "ruff", "sae-lens", "transformer-lens"):
        assert tool not in runtime
    test = _pins(ROOT / "requirements-test.txt")
    assert {"pytest", "playwright", "ruff"} <= set(test) and "streamlit" not in test
    assert "-r requirements.txt" in (ROOT / "requirements-test.txt").read_text()


def test_no_extra_index_in_the_files_this_machine_installs():
    # an index this machine cannot reach makes every install retry for minutes
    for name in ("requirements.txt", "requirements-test.txt", "requirements-bench.txt"):
        lines = [line.split("#", 1)[0] for line in (ROOT / name).read_text().splitlines()]
        assert not [line for line in lines if "index-url" in line or "://" in line], name
