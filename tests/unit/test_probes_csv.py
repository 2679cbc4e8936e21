"""An uploaded probe CSV is checked cheaply before any model work (core.interp.probes.data.read_csv
and probe.plan_splits): one test per refusal, the audit's 40 MB file of identical rows, and a fuzz
test of random bytes and strings that must end in a dataset or a ProbeDataError, never anything else."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from core.interp.probes import data as D
from core.interp.probes.data import ProbeDataError, read_csv
from core.interp.probes.probe import plan_splits

NOUNS = ["cat", "dog", "mat", "park", "home", "tree", "lake", "road"]


def _csv(rows, header="text,label,token") -> bytes:
    return (header + "\n" + "\n".join(",".join(r) for r in rows) + "\n").encode()


def _good_rows():
    return [(f"the {n} is {a}", "noun", n) for n in NOUNS for a in ("red", "big")] + \
           [(f"a {a} {n} sat", "adjective", a) for n in NOUNS for a in ("red", "big", "old")]


def test_a_good_file_becomes_a_dataset_with_a_content_key():
    raw = _csv(_good_rows())
    data = read_csv(raw, "mine.csv")
    assert data.name == "mine.csv" and data.about == "40 rows, 2 classes"
    assert data.key.startswith("csv:") and read_csv(raw, "other.csv").key == data.key
    assert read_csv(raw.replace(b"sat", b"ran"), "mine.csv").key != data.key
    assert read_csv(b"\xef\xbb\xbf" + raw).texts == data.texts  # a UTF-8 BOM is fine


def test_the_audits_40_mb_of_identical_rows_is_refused_by_its_size_before_parsing(monkeypatch):
    row = "x" * 2000 + ",a\n"
    raw = ("text,label\n" + row * 20_000).encode()
    assert len(raw) > 40e6
    monkeypatch.setattr(pd, "read_csv", lambda *a, **k: pytest.fail("parsed a file over the limit"))
    with pytest.raises(ProbeDataError, match=r"The file is 40\.1 MB; the limit is 8 MB"):
        read_csv(raw)


def test_identical_rows_under_the_size_limit_are_refused_without_a_model():
    raw = ("text,label\n" + "the same sentence,a\n" * 4_000).encode()
    with pytest.raises(ProbeDataError, match="Every row of the file is the same row"):
        read_csv(raw)


def test_duplicate_rows_are_dropped_and_counted():
    rows = _good_rows()
    data = read_csv(_csv(rows + rows[:7]))
    assert len(data) == 40 and data.about == "40 rows, 2 classes; 7 duplicate row(s) dropped"


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "The file is empty"),
    (b"  \n\n", "The file is empty"),
    (b"text,label\x00\nab,c\n", "NUL bytes"),
    ("text,label\na,b\n".encode("utf-16"), "NUL bytes"),
    (b"text,label\n\xff\xfe,x\n", "not UTF-8"),
    (b'text,label\n"unclosed,x\nb,y\n', "not a valid CSV"),
    (b"text,label\n", "a header but no rows"),
    (b"words,label\na,b\n", r"no text column \(found: words, label\)"),
    (b"text,label\nsolo,x\n", "The CSV has a single row"),
    (b"text,label\na, b,x\nc,y\n", "more fields than the header"),
])
def test_broken_files_get_a_message(raw, message):
    with pytest.raises(ProbeDataError, match=message):
        read_csv(raw)


def test_rows_are_bounded_while_parsing():
    body = "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(D.MAX_ROWS + 5))
    with pytest.raises(ProbeDataError, match="more than 5,000 rows; the limit is 5,000"):
        read_csv(("text,label\n" + body).encode())


@pytest.mark.parametrize(("column", "limit"), [("text", D.MAX_TEXT_CHARS), ("label", D.MAX_LABEL_CHARS),
                                               ("token", D.MAX_TEXT_CHARS)])
def test_every_field_has_a_length_limit(column, limit):
    rows = [list(r) for r in _good_rows()]
    index = {"text": 0, "label": 1, "token": 2}[column]
    rows[3][index] = "y" * (limit + 1)
    with pytest.raises(ProbeDataError, match=rf"The {column} on line\(s\) 5 is longer than {limit:,} "
                                             rf"characters \(the longest has {limit + 1:,}\)"):
        read_csv(_csv(rows))


def test_a_field_longer_than_the_csv_modules_limit_gets_the_same_message():
    """131,072 characters is where Python's csv module gives up (an uncaught _csv.Error on the XOR
    page); here the length check answers, whichever parser reads the file."""
    rows = [list(r) for r in _good_rows()]
    rows[0][0] = "z" * 140_000
    with pytest.raises(ProbeDataError, match=r"The text on line\(s\) 2 is longer than 1,000"):
        read_csv(_csv(rows))


def test_all_the_text_together_is_bounded(monkeypatch):
    monkeypatch.setattr(D, "MAX_TOTAL_CHARS", 500)
    with pytest.raises(ProbeDataError, match="the limit is 500"):
        read_csv(_csv(_good_rows()))


def test_a_class_too_small_is_named_before_any_model_runs():
    rows = _good_rows() + [("the odd one", "rare", "odd")] * 1 + [("an odd two", "rare", "odd")]
    with pytest.raises(ProbeDataError, match=r"class\(es\) 'rare' \(2\): each class needs at least 5"):
        read_csv(_csv(rows))


def test_many_small_classes_are_summarised():
    rows = [(f"text {i}", f"class {i}") for i in range(50)]
    with pytest.raises(ProbeDataError, match=r"'class 0' \(1\), .* and 44 more: each class"):
        read_csv(_csv(rows, header="text,label"))


def test_splits_that_cannot_work_are_refused_before_the_model():
    """Five examples of each class, but every 'b' row has the same token: the held-out split puts that
    one word type on one side only. plan_splits needs no activations, so this costs milliseconds."""
    rows = [(f"the {n} is red", "a", n) for n in NOUNS] + [(f"the sun {i}", "b", "sun") for i in range(6)]
    data = read_csv(_csv(rows))
    with pytest.raises(ProbeDataError, match=r"'b' end up only on one side of the held-out split"):
        plan_splits(data)
    assert len(plan_splits(read_csv(_csv(_good_rows()))).test) > 0


def _random_inputs(n: int, seed: int = 0):
    rng = random.Random(seed)
    alphabet = ['a', 'b', ',', '"', '\n', '\r', ' ', 'é', '\x00', '\t', ';', '1', 'e', '9', '-', 'ñ',
                'text', 'label', 'token', 'inf', 'nan', '\u202e', '\ufeff']
    for i in range(n):
        if i % 3 == 0:
            yield bytes(rng.randrange(256) for _ in range(rng.randrange(0, 400)))
        else:
            header = rng.choice(["text,label,token\n", "text,label\n", "TEXT, Label\n", ""])
            body = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 300)))
            yield (header + body).encode("utf-8", errors="surrogatepass")


def test_fuzz_random_bytes_and_strings_end_in_a_dataset_or_a_message():
    outcomes = {"dataset": 0, "message": 0}
    for raw in _random_inputs(400):
        try:
            data = read_csv(raw)
        except ProbeDataError as err:
            assert str(err), raw
            outcomes["message"] += 1
            continue
        outcomes["dataset"] += 1
        try:
            plan_splits(data)
        except ProbeDataError:
            pass
    assert outcomes["message"] > 300  # almost all garbage is refused, each with words
