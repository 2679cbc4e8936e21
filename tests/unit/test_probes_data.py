"""Probe datasets: the bundled ones hold out what they promise, and every kind of bad CSV gets a
message that says what to fix (never a crash)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.interp.probes.data import (
    BUNDLED,
    MAX_ROWS,
    ProbeDataError,
    bundled_dataset,
    dataset_from_table,
    subsample,
    words_with_spans,
)
from core.world import world as W


@pytest.mark.parametrize("kind", list(BUNDLED))
def test_bundled_datasets_mark_the_right_word(kind):
    data = bundled_dataset(kind, 200, seed=1)
    assert len(data) == 200 and sum(data.is_test) == 50
    for text, span, word in zip(data.texts, data.char_spans, data.word_types, strict=True):
        marked = text[span[0]:span[1]]
        assert marked and " " not in marked
        if kind in ("gender", "is_name", "position"):
            assert marked == word
    if data.target == "class":
        counts = pd.Series(data.labels).value_counts()
        assert counts.max() - counts.min() <= max(2, 0.25 * counts.mean())


def test_gender_test_names_are_never_in_training():
    data = bundled_dataset("gender", 400)
    test = {w for w, t in zip(data.word_types, data.is_test, strict=True) if t}
    train = {w for w, t in zip(data.word_types, data.is_test, strict=True) if not t}
    assert test and train and not test & train
    assert test <= set(W.split_names("female", "heldout") + W.split_names("male", "heldout"))
    for name, label in zip(data.word_types, data.labels, strict=True):
        assert W.GENDER_OF[name] == label


def test_position_labels_count_words_and_is_name_labels_are_true():
    pos = bundled_dataset("position", 100)
    for text, span, label in zip(pos.texts, pos.char_spans, pos.labels, strict=True):
        words = [s for _, s in words_with_spans(text)]
        assert words.index(span) + 1 == label
    names = bundled_dataset("is_name", 100)
    all_names = set(W.FEMALE_NAMES + W.MALE_NAMES)
    for word, label in zip(names.word_types, names.labels, strict=True):
        assert (word in all_names) == (label == "name")


def test_ioi_marks_the_second_subject_mention():
    data = bundled_dataset("ioi", 40)
    for text, span, label in zip(data.texts, data.char_spans, data.labels, strict=True):
        s = text[span[0]:span[1]]
        assert text.count(s) == 2 and text.index(s) < span[0]
        assert label in ("first name", "second name")


def test_a_good_csv_becomes_a_dataset():
    verbs = ["ran.", "sat.", "ate.", "slept.", "sang."]
    df = pd.DataFrame({"Text": [f"{n} {v}" for v in verbs for n in ("Mary", "John", "Anna")],
                       "label": ["f", "m", "f"] * 5, "token": ["Mary", "John", "Anna"] * 5})
    data = dataset_from_table(df)
    assert data.target == "class" and data.classes == ("f", "m")
    assert data.char_spans[1] == (0, 4) and data.default_position == "marked"
    assert data.word_types[:3] == ("Mary", "John", "Anna")
    assert data.about == "15 rows, 2 classes"
    numeric = dataset_from_table(pd.DataFrame({"text": [f"t{i}" for i in range(30)],
                                               "label": [str(i * 0.5) for i in range(30)]}))
    assert numeric.target == "numeric" and numeric.labels[3] == 1.5
    assert numeric.char_spans is None and numeric.default_position == "last"
    few_numbers = dataset_from_table(pd.DataFrame({"text": list("abcdefghij"),
                                                   "label": ["0", "1"] * 5}))
    assert few_numbers.target == "class"


@pytest.mark.parametrize(("df", "message"), [
    (pd.DataFrame({"sentence": ["a"], "label": ["x"]}), r"no text column \(found: sentence, label\)"),
    (pd.DataFrame({"text": [], "label": []}), "no rows"),
    (pd.DataFrame({"text": ["a", "b"], "label": ["x", "x"]}), "Every row has the label 'x'"),
    (pd.DataFrame({"text": ["a", "  ", "c"], "label": ["x", "y", "x"]}), r"Empty text on line\(s\) 3"),
    (pd.DataFrame({"text": ["a", None, "c"], "label": ["x", "y", "x"]}), r"Empty text on line\(s\) 3"),
    (pd.DataFrame({"text": ["a", "b", "c"], "label": ["x", None, ""]}), r"Missing label on line\(s\) 3, 4"),
    (pd.DataFrame({"text": ["a b", "c d"], "label": ["x", "y"], "token": ["b", "z"]}),
     r"not in its text on line\(s\) 3"),
    (pd.DataFrame({"text": ["a b", "c d"], "label": ["x", "y"], "token": ["b", None]}),
     r"Empty token on line\(s\) 3"),
])
def test_bad_csvs_get_clear_messages(df, message):
    with pytest.raises(ProbeDataError, match=message):
        dataset_from_table(df)


def test_too_many_rows_are_refused():
    df = pd.DataFrame({"text": ["a"] * (MAX_ROWS + 1), "label": ["x", "y"] * (MAX_ROWS // 2) + ["x"]})
    with pytest.raises(ProbeDataError, match="more than 5,000 rows; the limit is 5,000"):
        dataset_from_table(df)


def test_many_bad_lines_are_summarised():
    df = pd.DataFrame({"text": [""] * 10, "label": ["x"] * 10})
    with pytest.raises(ProbeDataError, match=r"2, 3, 4, 5, 6, 7 and 4 more"):
        dataset_from_table(df)


def test_subsample_keeps_rows_aligned():
    data = bundled_dataset("gender", 400)
    small = subsample(data, 100, seed=0)
    assert len(small) == 100 and len(small.char_spans) == 100 and len(small.is_test) == 100
    index = [data.texts.index(t) for t in small.texts[:10]]
    assert [data.labels[i] for i in index] == list(small.labels[:10])
    assert subsample(data, 1000) is data
    assert np.mean(small.is_test) == pytest.approx(0.25, abs=0.1)


@pytest.mark.parametrize("bad", ["inf", "1e999", "-inf", "Infinity", "1e300"])
@pytest.mark.parametrize("n_distinct", [2, 20])  # labels read as classes, or as a numeric target
def test_number_labels_must_be_finite(bad, n_distinct):
    labels = [str(i % n_distinct) for i in range(30)]
    labels[3] = bad
    df = pd.DataFrame({"text": [f"t{i}" for i in range(30)], "label": labels})
    with pytest.raises(ProbeDataError, match=rf"label on line\(s\) 5 is infinite or too big \('{bad}'\)"):
        dataset_from_table(df)
    labels[3] = "1e14"  # big but finite is fine as a number...
    if n_distinct == 2:  # ...and as classes it is a class of one example
        with pytest.raises(ProbeDataError, match=r"class\(es\) '1e14' \(1\): each class needs at least 5"):
            dataset_from_table(df.assign(label=labels))
        return
    data = dataset_from_table(df.assign(label=labels))
    assert data.labels[3] == 1e14 and data.target == "numeric"


def test_column_names_differing_only_in_case_are_refused():
    df = pd.DataFrame([["a", "b", "x"], ["c", "d", "y"]], columns=["Text", "text", "label"])
    with pytest.raises(ProbeDataError, match="more than one column named `text`"):
        dataset_from_table(df)
    df = pd.DataFrame([["a", "x", "y"]], columns=["text", "Label", " label "])
    with pytest.raises(ProbeDataError, match="more than one column named `label`"):
        dataset_from_table(df)
