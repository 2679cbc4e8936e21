"""Datasets, and the messages a bad CSV gets."""

from __future__ import annotations

import numpy as np
import pytest

from core.scratch.data import (
    DATASETS,
    MAX_BYTES,
    MAX_CELL_CHARS,
    MAX_ROWS,
    CSVError,
    check_rescaled,
    make_dataset,
    read_csv,
    rescale,
)


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


def test_a_field_over_the_csv_modules_limit_is_a_csv_error_not_a_crash():
    with pytest.raises(CSVError, match=r"Line 2 cannot be read as CSV \(field larger than field limit"):
        read_csv(b"x,y,label\n1,2," + b"a" * 200_000 + b"\n3,4,b\n")
    with pytest.raises(CSVError, match=f"Line 3 has a cell of 101 characters; .* at most {MAX_CELL_CHARS}"):
        read_csv("x,y,label\n1,2,a\n3,4," + "b" * 101 + "\n")


def test_a_file_over_the_size_limit_is_refused_before_parsing():
    with pytest.raises(CSVError, match="The file is 5.0 MB; the limit is 2 MB"):
        read_csv(b"x,y,label\n1,2," + b"a" * 5_000_000)
    assert MAX_BYTES == 2_000_000


def test_nul_characters_are_refused():
    with pytest.raises(CSVError, match="NUL characters"):
        read_csv("x,y,label\n1,2,a\x00\n3,4,b\n")


def test_coordinates_near_the_largest_float_rescale_to_minus_one_and_one():
    d = read_csv("x,y,label\n1e308,-1.7e308,a\n-1e308,1.7e308,b\n0,0,a\n")
    np.testing.assert_allclose(d.X, [[1, -1], [-1, 1], [0, 0]], atol=1e-12)
    assert np.isfinite(d.X).all() and "x [-1e+308, 1e+308]" in d.note and "rescaled to [-1, 1]" in d.note


def test_rescale_is_exact_on_ordinary_numbers_and_keeps_a_constant_column_at_zero():
    X, low, high = rescale(np.array([[10.0, 5.0], [20.0, 5.0], [30.0, 5.0]]))
    np.testing.assert_allclose(X, [[-1, 0], [0, 0], [1, 0]])
    assert low.tolist() == [10, 5] and high.tolist() == [30, 5]
    assert "(constant: kept at 0)" in read_csv("x,y,label\n1,3,a\n2,3,b\n").note


def test_rescaled_values_that_are_not_finite_are_refused_not_shown():
    check_rescaled(np.array([[-1.0, 1.0]]))  # fine
    for bad in (np.array([[np.nan, 0.0]]), np.array([[np.inf, 0.0]]), np.array([[2.0, 0.0]])):
        with pytest.raises(CSVError, match="cannot be rescaled"):
            check_rescaled(bad)
