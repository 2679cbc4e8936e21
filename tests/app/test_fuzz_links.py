"""Hostile links: every page, opened from a link whose every parameter is random, huge, NaN or unicode,
shows no exception; a link with values a page cannot use gets one note saying what was used instead.

The parameters are discovered, not listed: a normal run of each page in ui.common.registry.TOPICS
shows which widgets are bound to the URL (their proto carries a query_param_key), and each round
gives every one of them a value from a seeded generator, plus a hostile ?model=. Uploads are fuzzed by
the topic owners. Marked `slow` (about 1-2 minutes); find it with `-k fuzz`.
"""

from __future__ import annotations

import random
import re

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from tests.app.helpers import ROOT, open_page, texts
from ui.common.registry import TOPICS

SEED = 20261207
ROUNDS = 2  # random links per page (each a full page run)
MODEL_SPECS = ["x" * 300, "a/" * 3000, "/etc/passwd", "../../../../", "\x00", "GPT-2 small (124M)", "💥" * 40,
               "~/.ssh", "/proc/self/environ", "gpt2\n", "%00", "org/" + "y" * 200, "./", "//tmp//"]
PUNCTUATED = "abcXYZ019 ,.;:-_/\\%&=?#'\"<>[]{}()*`$~|"
_KEY = re.compile(r'query_param_key: "([^"]+)"')


def _values(rng: random.Random) -> str | list[str]:
    """One hostile value: numbers out of every range, non-numbers, unicode, huge, empty, repeated."""
    pick = rng.choice([
        lambda: rng.choice(["nan", "NaN", "inf", "-inf", "1e30", "-1e30", "1e308", "9" * 400, "-1", "0",
                            "999", "0.000001", "-0", "1_000", "0x10", "true", "FALSE", "None", "null"]),
        lambda: "".join(rng.choice(PUNCTUATED) for _ in range(rng.randint(1, 30))),
        lambda: rng.choice(["日本語", "💥" * 50, "\u202eevil", "a\u200bb", "Ω≈ç√", "\x00", "\n\t",
                            "é" * 300]),
        lambda: "x" * rng.choice([1_000, 5_000, 20_000]),
        lambda: "",
        lambda: [rng.choice(["a", "0", "nan", "💥", "999"]) for _ in range(rng.randint(2, 4))],
    ])
    return pick()


def _bound_keys(at: AppTest) -> set[str]:
    """Keys of the widgets this run bound to the URL (proto.query_param_key), anywhere on the page."""
    keys, stack = set(), [at._tree]
    while stack:
        node = stack.pop()
        proto = getattr(node, "proto", None)
        if proto is not None:
            keys.update(_KEY.findall(str(proto)))
        stack.extend(getattr(node, "children", {}).values())
    return keys


def _open_link(script: str, query: dict) -> AppTest:
    """A fresh session opening `script` straight from a link (the page is the first thing it runs)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update(query)
    at.session_state["predict_first"] = False
    at.switch_page(script)
    at.run()
    return at


@pytest.fixture(autouse=True)
def error_details():
    """Full exception text in this test's failures (the app itself shows visitors only the type)."""
    before = config.get_option("client.showErrorDetails")
    config.set_option("client.showErrorDetails", "full")
    yield
    config.set_option("client.showErrorDetails", before)


def _failures(at: AppTest) -> list[str]:
    """Each exception on the page: its message and the line of the app that raised it."""
    out = []
    for e in at.exception:
        ours = [line for line in e.stack_trace if str(ROOT) in line and ".venv" not in line]
        out.append(f"{str(e.value)[:300]} at {ours[-1].strip() if ours else '?'}")
    return out


@pytest.mark.slow
@pytest.mark.fuzz
@pytest.mark.parametrize("topic", TOPICS, ids=[t.url_path for t in TOPICS])
def test_fuzz_every_url_parameter_of_every_page(topic, monkeypatch):
    monkeypatch.setenv("LAB_NOTEBOOK", "session")  # the notebook page keeps entries in the session
    monkeypatch.delenv("LAB_NOTEBOOK_URL", raising=False)
    keys = _bound_keys(open_page(topic.path))
    assert keys, f"{topic.path} binds no widget to the URL"
    rng = random.Random(f"{SEED}-{topic.url_path}")
    failed = []
    for round_ in range(ROUNDS):
        query = {key: _values(rng) for key in sorted(keys)}
        if topic.uses_model:
            query["model"] = rng.choice(MODEL_SPECS)
        query["not_a_setting"] = _values(rng)
        problems = _failures(_open_link(topic.path, query))
        if problems:
            failed.append(f"round {round_} ({ {k: str(v)[:40] for k, v in query.items()} }): {problems}")
    assert not failed, f"seed {SEED}, /{topic.url_path}:\n" + "\n".join(failed)


@pytest.mark.slow
@pytest.mark.fuzz
@pytest.mark.parametrize("spec", MODEL_SPECS, ids=[f"model{i}" for i in range(len(MODEL_SPECS))])
def test_fuzz_model_links_never_raise(spec):
    at = _open_link("app_pages/attention.py", {"model": spec})
    assert not at.exception, [e.value for e in at.exception]
    assert "Still using **Bundled model (synthetic world)**" in texts(at)


def test_a_link_with_values_the_page_cannot_use_gets_one_note():
    at = _open_link("app_pages/xor.py", {"xor_noise": "1e30", "xor_layers": "2", "xor_seed": "nan",
                                         "xor_lr": "7", "bogus_setting": "1"})
    notes = [c.value for c in at.caption if "link you opened" in c.value]
    assert len(notes) == 1
    note = notes[0]
    assert "**xor\\_noise** = 1e30 is not valid here; used 0\\.15" in note
    assert "**xor\\_seed** = nan is not valid here; used 0" in note
    assert "**xor\\_lr** = 7 is not valid here; used 0\\.05" in note
    assert "**bogus\\_setting** = 1 is not a setting of this page" in note
    assert "xor\\_layers" not in note  # a valid value is not mentioned
    assert at.slider(key="xor_layers").value == 2  # and is in use
    at.slider(key="xor_layers").set_value(3).run()  # the same page view: the note stays, unchanged
    assert [c.value for c in at.caption if "link you opened" in c.value] == [note]


def test_a_link_whose_values_all_apply_gets_no_note():
    at = _open_link("app_pages/xor.py", {"xor_noise": "0.3", "xor_layers": "2", "xor_seed": "7"})
    assert not [c.value for c in at.caption if "link you opened" in c.value]
    assert at.number_input(key="xor_seed").value == 7
