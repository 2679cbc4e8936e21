"""Two-dimensional, two-class datasets, and reading your own from a CSV file.

- **XOR**: the four points of the truth table, (0,0) and (1,1) are class 0, (0,1) and (1,0) class 1.
  No straight line separates them (Minsky and Papert, 1969), so a network without a hidden layer
  cannot learn it; one hidden layer of two units can.
- **Noisy XOR**: clouds of points around the four corners, `noise` is their spread.
- **Circles**: a disc inside a ring; the boundary must close on itself.
- **Spirals**: two interleaved spirals, the hardest: the boundary winds around the centre.
- **Your own**: a CSV with columns x, y and label; the label takes exactly two values. Coordinates
  are rescaled to [-1, 1] (the network learns badly from inputs in the thousands). The rescaling is
  computed from halves, (x - centre) / half-range with centre = lo/2 + hi/2 and half-range =
  hi/2 - lo/2, so even coordinates near the largest float (1e308) rescale without overflowing; a
  file whose rescaled coordinates would still not be finite is refused, never silently zeroed.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

DATASETS = ("xor", "noisy_xor", "circles", "spirals")
MAX_ROWS = 10_000
MAX_BYTES = 2_000_000  # 10,000 rows of three ordinary cells need well under 1 MB
MAX_CELL_CHARS = 100  # a number or a class name; anything longer is not a coordinate or a label
REQUIRED_COLUMNS = ("x", "y", "label")


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    X: np.ndarray  # [n, 2] float64
    y: np.ndarray  # [n] float64, 0 or 1
    class_names: tuple[str, str] = ("0", "1")
    note: str = ""

    @property
    def n(self) -> int:
        return int(self.X.shape[0])


class CSVError(ValueError):
    """The uploaded file cannot be used; the message names the problem."""


def _split(n: int) -> tuple[int, int]:
    return n // 2, n - n // 2


def make_dataset(name: str, n_points: int = 200, noise: float = 0.15, seed: int = 0) -> Dataset:
    """A generated dataset. XOR ignores n_points, noise and seed (it is always the four points)."""
    if name == "xor":
        X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])  # [4, 2]
        return Dataset("xor", X, np.array([0.0, 1.0, 1.0, 0.0]))
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    rng = np.random.default_rng(seed)
    n0, n1 = _split(n_points)
    if name == "noisy_xor":
        corners = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])  # class 0, 0, 1, 1
        which = np.concatenate([rng.integers(0, 2, n0), rng.integers(2, 4, n1)])  # [n]
        X = corners[which] + noise * rng.normal(size=(n_points, 2))
        y = (which >= 2).astype(float)
    elif name == "circles":
        r = np.concatenate([rng.uniform(0.65, 1.0, n0), rng.uniform(0.0, 0.4, n1)])  # outer ring 0, disc 1
        angle = rng.uniform(0, 2 * np.pi, n_points)
        X = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1) + noise * rng.normal(size=(n_points, 2))
        y = np.concatenate([np.zeros(n0), np.ones(n1)])
    else:  # spirals
        t = np.concatenate([rng.uniform(0.05, 1.0, n0), rng.uniform(0.05, 1.0, n1)])  # [n]
        turn = np.concatenate([np.zeros(n0), np.full(n1, np.pi)])  # the second spiral is rotated
        angle = 1.75 * 2 * np.pi * t + turn
        X = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1)
        X += 0.3 * noise * rng.normal(size=(n_points, 2))
        y = np.concatenate([np.zeros(n0), np.ones(n1)])
    order = rng.permutation(n_points)
    return Dataset(name, X[order], y[order])


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def _sort_labels(labels: set[str]) -> list[str]:
    numbers = {s: _number(s) for s in labels}
    if all(v is not None for v in numbers.values()):
        return sorted(labels, key=lambda s: numbers[s])
    return sorted(labels)


def _rows(text: str) -> list[list[str]]:
    """The CSV's non-empty rows; CSVError for a cell over MAX_CELL_CHARS or a line csv cannot parse."""
    reader = csv.reader(io.StringIO(text))
    rows, n_rows = [], 0
    try:
        for row in reader:
            long = next((cell for cell in row if len(cell) > MAX_CELL_CHARS), None)
            if long is not None:
                raise CSVError(f"Line {reader.line_num} has a cell of {len(long):,} characters; a cell "
                               f"holds a number or a class name, at most {MAX_CELL_CHARS} characters.")
            if any(cell.strip() for cell in row):
                n_rows += 1
                if n_rows <= MAX_ROWS + 1:  # the header and MAX_ROWS rows are kept; the rest only counted
                    rows.append(row)
    except csv.Error as err:  # e.g. a field over the csv module's own limit (131,072 characters)
        raise CSVError(f"Line {reader.line_num} cannot be read as CSV ({err}). A cell holds a number or a "
                       f"class name, at most {MAX_CELL_CHARS} characters.") from err
    if n_rows > MAX_ROWS + 1:
        raise CSVError(f"Too many rows: {n_rows - 1:,} data rows; the limit is {MAX_ROWS:,}.")
    return rows


def rescale(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X [n, 2] -> (X rescaled to [-1, 1] per column, column minima, column maxima).

    Computed from halves so that no intermediate overflows; CSVError if the result is not finite."""
    low, high = X.min(axis=0), X.max(axis=0)
    centre = low / 2 + high / 2
    half = high / 2 - low / 2
    half = np.where(half > 0, half, 1.0)  # a constant column stays at 0
    with np.errstate(all="ignore"):
        scaled = (X - centre) / half
    check_rescaled(scaled)
    return scaled, low, high


def check_rescaled(scaled: np.ndarray) -> None:
    """CSVError unless every rescaled coordinate is finite and within [-1, 1] (up to rounding)."""
    if not np.isfinite(scaled).all() or np.abs(scaled).max(initial=0.0) > 1 + 1e-9:
        raise CSVError("The coordinates cannot be rescaled to [-1, 1]: they are too large or too close to "
                       "each other for 64-bit floats. Divide them by a common factor and upload again.")


def read_csv(data: bytes | str) -> Dataset:
    """Validate and load a CSV of x, y, label. Raises CSVError naming the problem:
    too big, a cell too long, missing columns, non-numeric coordinates, a label that is not two
    classes, too many rows, coordinates that cannot be rescaled."""
    size = len(data.encode("utf-8") if isinstance(data, str) else data)
    if size > MAX_BYTES:
        raise CSVError(f"The file is {size / 1e6:.1f} MB; the limit is {MAX_BYTES / 1e6:.0f} MB "
                       f"({MAX_ROWS:,} rows of x, y and label).")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise CSVError("The file is not text (UTF-8): is it really a CSV?") from err
    if "\x00" in data:
        raise CSVError("The file contains NUL characters, so it is not a plain-text CSV (UTF-16, or a binary "
                       "file?). Save it as CSV in UTF-8 and upload again.")
    rows = _rows(data)
    if not rows:
        raise CSVError("The file is empty: it needs a header row x, y, label and at least two rows of data.")
    header = [cell.strip().lower() for cell in rows[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        found = ", ".join(h for h in header if h) or "nothing"
        raise CSVError(f"Missing column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}. "
                       f"The first row must name the columns x, y and label; this file has: {found}.")
    body = rows[1:]
    if len(body) > MAX_ROWS:
        raise CSVError(f"Too many rows: {len(body):,} data rows; the limit is {MAX_ROWS:,}.")
    if len(body) < 2:
        raise CSVError("Too few rows: the file needs at least two rows of data under its header.")
    col = {c: header.index(c) for c in REQUIRED_COLUMNS}
    cells = {c: [r[col[c]].strip() if col[c] < len(r) else "" for r in body] for c in REQUIRED_COLUMNS}
    coords = []
    for c in ("x", "y"):
        values = [_number(s) for s in cells[c]]
        bad = [i for i, v in enumerate(values) if v is None]
        if bad:
            first = cells[c][bad[0]]
            shown = f"'{first}'" if first else "an empty cell"
            raise CSVError(f"Column {c} has {len(bad)} value{'s' if len(bad) > 1 else ''} that "
                           f"{'are' if len(bad) > 1 else 'is'} not a number, first {shown} on line "
                           f"{bad[0] + 2}. x and y must be numbers.")
        coords.append(values)
    if "" in cells["label"]:
        raise CSVError(f"Column label is empty on line {cells['label'].index('') + 2}.")
    classes = _sort_labels(set(cells["label"]))
    if len(classes) != 2:
        listed = ", ".join(classes[:6]) + (", ..." if len(classes) > 6 else "")
        what = "only one class" if len(classes) == 1 else f"{len(classes)} classes"
        raise CSVError(f"Column label has {what} ({listed}); it needs exactly two, because this "
                       f"network has one output unit that separates two classes.")
    X, low, high = rescale(np.array(coords, dtype=float).T)  # [n, 2]
    y = np.array([classes.index(s) for s in cells["label"]], dtype=float)  # [n]
    ranges = ", ".join(f"{c} [{lo:.4g}, {hi:.4g}]" + (" (constant: kept at 0)" if lo == hi else "")
                       for c, lo, hi in zip("xy", low, high, strict=True))
    note = (f"{len(body):,} points; {ranges} rescaled to [-1, 1]; "
            f"class 0 = {classes[0]}, class 1 = {classes[1]}.")
    return Dataset("csv", X, y, (classes[0], classes[1]), note)
