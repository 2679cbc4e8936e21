"""Datasets, and the messages a bad CSV gets."""

from __future__ import annotations

import numpy as np
import pytest

from core.scratch.data import DATASETS, MAX_ROWS, CSVError, make_dataset, read_csv


def test_xor_is_the_truth_table():
    d = make_dataset("xor")
    assert d.X.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert d.y.tolist() == [0, 1, 1, 0]


@pytest.mark.parametrize("name", DATASETS[1:])
def test_generated_datasets_are_balanced_seeded_and_sized(name):
    a, b = make_dataset(name, 200, 0.1, seed=3), make_dataset(name, 200, 0.1, seed=3)
    assert a.X.shape == (200, 2) and set(a.y.tolist()) == {0.0, 1.0} and a.y.sum() == 100
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, make_dataset(name, 200, 0.1, seed=4).X)


def test_noisy_xor_labels_follow_the_corners():
    d = make_dataset("noisy_xor", 400, noise=0.05, seed=0)
    predicted = (d.X[:, 0] > 0.5) != (d.X[:, 1] > 0.5)
    assert np.mean(predicted == (d.y == 1)) > 0.99


def test_a_good_csv_loads_with_its_class_names_and_rescaled():
    d = read_csv(b"X, Y ,Label\n10,200,cat\n20,400,dog\n30,300,cat\n")
    assert d.class_names == ("cat", "dog") and d.y.tolist() == [0, 1, 0]
    assert d.X.min() == -1 and d.X.max() == 1
    assert "x [10, 30]" in d.note and "y [200, 400]" in d.note


def test_numeric_labels_are_ordered_as_numbers():
    d = read_csv("x,y,label\n0,0,10\n1,1,9\n")
    assert d.class_names == ("9", "10") and d.y.tolist() == [1, 0]


@pytest.mark.parametrize("text,message", [
    ("", "The file is empty"),
    ("x,y\n1,2\n3,4\n", "Missing column: label"),
    ("a,b,c\n1,2,3\n", "Missing columns: x, y, label. The first row must name the columns x, y and label; "
                       "this file has: a, b, c"),
    ("x,y,label\n1,2,0\n3,abc,1\n", "Column y has 1 value that is not a number, first 'abc' on line 3"),
    ("x,y,label\n1,2,0\n,4,1\nz,1,0\n", "Column x has 2 values that are not a number, first an empty cell on "
                                       "line 3"),
    ("x,y,label\n1,nan,0\n3,4,1\n", "Column y has 1 value that is not a number, first 'nan' on line 2"),
    ("x,y,label\n1,2,0\n3,4,1\n5,6,2\n", "label has 3 classes (0, 1, 2); it needs exactly two"),
    ("x,y,label\n1,2,a\n3,4,a\n", "label has only one class (a)"),
    ("x,y,label\n1,2,0\n", "Too few rows"),
    ("x,y,label\n1,2,0\n3,4,\n", "Column label is empty on line 3"),
])
def test_bad_csv_gets_a_message_naming_the_problem(text, message):
    with pytest.raises(CSVError) as err:
        read_csv(text)
    assert message in str(err.value)


def test_too_many_rows_is_refused_with_the_count():
    body = "".join(f"{i},{i % 7},{i % 2}\n" for i in range(MAX_ROWS + 1))
    with pytest.raises(CSVError, match="10,001 data rows; the limit is 10,000"):
        read_csv("x,y,label\n" + body)
    assert read_csv("x,y,label\n" + body[: body.rindex("10000,")]).n == MAX_ROWS


def test_binary_garbage_is_refused():
    with pytest.raises(CSVError, match="not text"):
        read_csv(b"\xff\xfe\x00\x81garbage")
