"""Labelled datasets for probes: the bundled world's ground truth, or a CSV you bring.

A probing dataset is a list of texts, one label each, and where in the text to read the model: the
last token, a marked word (its last token), or the mean over all tokens. Two more columns make the
experiment honest:

- word type: the word the label belongs to (the name for gender, the colour word for colour). The
  control task gives every word type a random label (Hewitt & Liang, 2019), so a probe that scores
  well on it is memorising words, not reading a property.
- held-out split: the bundled datasets test on names and sentence frames that never appear in
  probe training, so a probe cannot pass by remembering "Mary is female".

Labels are classes (strings) or numbers (the position index, or a numeric CSV column).

A CSV you bring is checked cheaply before any model work, in order of cost: the file's size, its
bytes (binary, not UTF-8), the parse, the number of rows, each field's length and the total text,
empty fields, duplicate rows (dropped: an identical row in training and test would be memorised),
the labels, and the examples per class. Only data that passes all of them reaches the model.
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
import re
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from core.world import datasets as D
from core.world import world as W

MAX_CSV_BYTES = 8_000_000  # checked before parsing
MAX_ROWS = 5_000  # more than the bundled datasets' largest (4,000); each row is a text through the model
MAX_TEXT_CHARS = 1_000  # one text (and its token)
MAX_LABEL_CHARS = 100
MAX_TOTAL_CHARS = 1_000_000  # all texts together: about 250k tokens through the model
MIN_PER_CLASS = 5  # at least 4 to train on and 1 to test on
NUMERIC_MIN_DISTINCT = 11  # a numeric column with fewer distinct values is treated as classes
POSITIONS = ("last", "marked", "mean")
MAX_LABEL = 1e15  # a bigger number label overflows the squared errors of a regression


class ProbeDataError(ValueError):
    """The data cannot be probed as it is; the message says what to change."""


@dataclass(frozen=True)
class ProbeDataset:
    """texts and labels, plus: char_spans of the marked word per text (or None), word_types for the
    control task, groups held out together in cross-validation, and is_test, the fixed held-out
    split (None: split by groups)."""

    name: str
    texts: tuple[str, ...]
    labels: tuple  # str (classes) or float (numeric target)
    target: str  # "class" or "numeric"
    word_types: tuple[str, ...]
    groups: tuple[str, ...]
    char_spans: tuple[tuple[int, int], ...] | None = None
    is_test: tuple[bool, ...] | None = None
    default_position: str = "last"
    about: str = ""  # one sentence: what the label is and where it is read
    key: str = ""  # names the content exactly (a cache key): the bundled recipe or the file's hash

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.labels))) if self.target == "class" else ()

    def y(self) -> np.ndarray:
        return np.asarray(self.labels, dtype=float if self.target == "numeric" else object)


# -- the bundled world ----------------------------------------------------------------------------
@dataclass(frozen=True)
class BundledInfo:
    title: str
    position: str
    about: str


BUNDLED = {
    "gender": BundledInfo("Subject gender", "last", "Is the sentence's character female or male? "
                          "Read at the final token, long after the name."),
    "sentiment": BundledInfo("Sentiment", "marked", "Is the feeling word positive or negative?"),
    "colour": BundledInfo("Colour", "marked", "Which of 11 colours is named (read at the colour word)?"),
    "place": BundledInfo("Place", "marked", "Which of 16 places is named (read at the place word)?"),
    "position": BundledInfo("Position index", "marked", "The position of the marked word "
                            "(1 = first word): a number, so the probe is a Ridge regression."),
    "is_name": BundledInfo("Is this token a name?", "marked", "Is the marked word a person's name?"),
    "ioi": BundledInfo("IOI: which name is the indirect object", "last",
                       "In \"When Mary and John went to the store, John gave a drink to\", is the "
                       "indirect object the first or the second name? Read at the final token."),
}
_NAMES = frozenset(W.FEMALE_NAMES + W.MALE_NAMES)
_WORD = re.compile(r"[^\s.,!?:]+|[.,!?:]")  # the bundled pre-tokenizer: words and punctuation


def words_with_spans(text: str) -> list[tuple[str, tuple[int, int]]]:
    """Words of a bundled-world text and their character spans (one word = one bundled token)."""
    return [(m.group(), m.span()) for m in _WORD.finditer(text)]


def _counts(n: int, test_fraction: float) -> tuple[int, int]:
    n_test = max(2, round(n * test_fraction))
    return n - n_test, n_test


def _from_sentences(kind: str, n: int, seed: int, test_fraction: float) -> dict:
    rows = []
    for split, count in zip(("train", "heldout"), _counts(n, test_fraction), strict=True):
        for s in D.labelled_sentences(kind, count, seed=seed, split=split):
            word = s.word.strip()
            rows.append((s.text, s.label, word, word if kind == "gender" else s.text,
                         s.char_span, split == "heldout"))
    return _columns(rows)


def _mixed_sentences(count: int, seed: int, split: str) -> list[str]:
    per = count // len(D.ATTRIBUTES) + 1
    texts = [s.text for a in D.ATTRIBUTES for s in D.labelled_sentences(a, per, seed, split)]
    random.Random(seed).shuffle(texts)
    return texts


def _word_rows(kind: str, n: int, seed: int, test_fraction: float) -> dict:
    """is_name / position: one marked word per sentence, drawn from the sentence's words."""
    rng = random.Random(seed)
    rows = []
    for split, count in zip(("train", "heldout"), _counts(n, test_fraction), strict=True):
        part = []
        for text in _mixed_sentences(2 * count, seed, split):
            if len(part) == count:
                break
            words = words_with_spans(text)
            if kind == "is_name":
                want = len(part) % 2 == 0  # alternate, so the classes stay balanced
                pick = [i for i, (w, _) in enumerate(words) if (w in _NAMES) == want]
                if not pick:
                    continue
                i = rng.choice(pick)
                label = "name" if want else "not a name"
            else:
                i = rng.randrange(len(words))
                label = float(i + 1)
            word, span = words[i]
            part.append((text, label, word, word if kind == "is_name" else text, span,
                         split == "heldout"))
        rows += part
    return _columns(rows)


def _ioi_rows(n: int, seed: int, test_fraction: float) -> dict:
    rows = []
    for split, count in zip(("train", "heldout"), _counts(n, test_fraction), strict=True):
        for p in D.ioi_prompts(count, seed=seed, split=split):
            s = p.s.strip()
            second = [m.span() for m in re.finditer(rf"\b{re.escape(s)}\b", p.clean)][1]
            rows.append((p.clean, "first name" if p.io_first else "second name", p.io.strip(),
                         f"templates {p.intro}-{p.action}", second, split == "heldout"))
    return _columns(rows)


def _columns(rows) -> dict:
    texts, labels, types, groups, spans, test = zip(*rows, strict=True)
    return dict(texts=texts, labels=labels, word_types=types, groups=groups, char_spans=spans,
                is_test=test)


def bundled_dataset(kind: str, n: int = 2000, seed: int = 0, test_fraction: float = 0.25
                    ) -> ProbeDataset:
    """A probing dataset from the bundled world's ground truth: one of BUNDLED's keys.

    The test part comes from the "heldout" split of core.world.datasets (names, frames or IOI
    templates that the training part never uses); the marked word is the one carrying the label
    (for IOI: the second mention of the subject; for position and is_name: a drawn word).
    """
    if kind not in BUNDLED:
        raise ValueError(f"kind must be one of {tuple(BUNDLED)}, not {kind!r}")
    if kind in D.ATTRIBUTES:
        cols = _from_sentences(kind, n, seed, test_fraction)
    elif kind == "ioi":
        cols = _ioi_rows(n, seed, test_fraction)
    else:
        cols = _word_rows(kind, n, seed, test_fraction)
    info = BUNDLED[kind]
    return ProbeDataset(name=info.title, target="numeric" if kind == "position" else "class",
                        default_position=info.position, about=info.about,
                        key=f"bundled:{kind}:{n}:{seed}:{test_fraction}", **cols)


# -- bring your own -------------------------------------------------------------------------------
def _rows(mask: pd.Series) -> str:
    """File line numbers (header = line 1) of the rows where mask is true, at most six shown (the
    frame keeps the file's row index, also after duplicates are dropped)."""
    lines = [str(i + 2) for i in mask.index[mask.to_numpy(dtype=bool)]]
    more = f" and {len(lines) - 6} more" if len(lines) > 6 else ""
    return ", ".join(lines[:6]) + more


def _listed(items: list[str], limit: int = 6) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _blank(column: pd.Series) -> pd.Series:
    return column.isna() | column.astype(str).str.strip().eq("")


def read_csv(raw: bytes, name: str = "your CSV") -> ProbeDataset:
    """An uploaded file's bytes -> a validated dataset, or ProbeDataError saying what to change.

    The checks that cost nothing come first: size (MAX_CSV_BYTES, before parsing), NUL bytes,
    UTF-8, then the parse (at most MAX_ROWS + 1 rows are read), then dataset_from_table."""
    if len(raw) > MAX_CSV_BYTES:  # first: nothing below may copy or scan a huge upload
        raise ProbeDataError(f"The file is {len(raw) / 1e6:,.1f} MB; the limit is "
                             f"{MAX_CSV_BYTES / 1e6:,.0f} MB. Sample it down: a few thousand short "
                             "rows are plenty for a linear probe.")
    if not raw.strip():
        raise ProbeDataError("The file is empty.")
    if b"\x00" in raw:
        raise ProbeDataError("The file holds NUL bytes: it is binary, or saved as UTF-16. Save it as "
                             "a UTF-8 CSV.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ProbeDataError("The file is not UTF-8 text; save it as a UTF-8 CSV.") from err
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # extra fields would be dropped
            df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=True, skipinitialspace=True,
                             nrows=MAX_ROWS + 1, index_col=False)
    except pd.errors.ParserWarning as err:
        raise ProbeDataError("Some rows have more fields than the header: put a text that holds a "
                             'comma in double quotes ("like, this").') from err
    except pd.errors.EmptyDataError as err:
        raise ProbeDataError("The file is empty.") from err
    except (pd.errors.ParserError, csv.Error, ValueError) as err:
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ProbeDataError(f"The file is not a valid CSV: {reason}") from err
    df = df.reset_index(drop=True)  # row i is file line i + 2, whatever the parser made of the index
    return dataset_from_table(df, name=name, key="csv:" + hashlib.sha256(raw).hexdigest())


def _check_sizes(df: pd.DataFrame) -> None:
    """Rows, the length of every field, and all the text together: bounded before anything else."""
    if len(df) == 0:
        raise ProbeDataError("The CSV has a header but no rows.")
    if len(df) > MAX_ROWS:
        raise ProbeDataError(f"The CSV has more than {MAX_ROWS:,} rows; the limit is {MAX_ROWS:,}. "
                             "Sample it down (a few thousand rows are plenty for a linear probe).")
    limits = {"text": MAX_TEXT_CHARS, "token": MAX_TEXT_CHARS, "label": MAX_LABEL_CHARS}
    for column, limit in limits.items():
        if column not in df.columns:
            continue
        lengths = df[column].fillna("").astype(str).str.len()
        long = lengths > limit
        if long.any():
            raise ProbeDataError(f"The {column} on line(s) {_rows(long)} is longer than {limit:,} "
                                 f"characters (the longest has {int(lengths.max()):,}): shorten "
                                 "those rows or delete them.")
    total = int(df["text"].fillna("").astype(str).str.len().sum())
    if total > MAX_TOTAL_CHARS:
        raise ProbeDataError(f"The texts hold {total:,} characters in all; the limit is "
                             f"{MAX_TOTAL_CHARS:,} (about {MAX_TOTAL_CHARS // 4:,} tokens through the "
                             "model). Use fewer or shorter rows.")


def _drop_duplicates(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows identical in every column used, kept once: a copy in training and in test would be
    remembered, not read."""
    used = [c for c in ("text", "label", "token") if c in df.columns]
    keys = df[used].apply(lambda col: col.astype(str).str.strip())
    dup = keys.duplicated()
    return df[~dup], int(dup.sum())


def check_class_sizes(labels) -> None:
    """Every class needs MIN_PER_CLASS examples (some to train on, one to test on); say which do not."""
    classes, counts = np.unique(np.asarray(labels, dtype=object).astype(str), return_counts=True)
    few = [f"{str(c)!r} ({int(n)})" for c, n in zip(classes, counts, strict=True) if n < MIN_PER_CLASS]
    if few:
        raise ProbeDataError(f"Too few examples for a train/test split in class(es) {_listed(few)}: "
                             f"each class needs at least {MIN_PER_CLASS}. Add rows or merge classes.")


def dataset_from_table(df: pd.DataFrame, name: str = "your CSV", key: str = "") -> ProbeDataset:
    """Validate an uploaded table (columns text, label and optionally token) into a dataset.

    Raises ProbeDataError with a message a learner can act on: missing or duplicate columns
    (`Text` and `text` count as the same), no rows or more than MAX_ROWS, a field over its length
    limit or too much text in all, empty texts, missing labels, number labels that are not finite
    (inf, 1e999), a token not found in its text, a single class, a class with fewer than
    MIN_PER_CLASS examples. Exact duplicate rows are dropped (and counted in `about`).
    A label column of numbers with at least NUMERIC_MIN_DISTINCT distinct values is a numeric
    target (Ridge regression); otherwise labels are classes. Word types (for the control task) are
    the tokens if given, else the texts.
    """
    df = df.rename(columns=lambda c: str(c).strip().lower())
    twice = list(dict.fromkeys(df.columns[df.columns.duplicated()]))
    if twice:
        named = " and ".join(f"`{c}`" for c in twice[:6])
        raise ProbeDataError(f"The CSV has more than one column named {named} (names are "
                             "compared ignoring case and spaces, so `Text` and `text` are the "
                             "same): rename or delete the extra column.")
    missing = [c for c in ("text", "label") if c not in df.columns]
    if missing:
        found = _listed([str(c)[:40] for c in df.columns], 8) or "none"
        raise ProbeDataError(f"The CSV needs columns named `text` and `label` (and optionally "
                             f"`token`); it has no {' or '.join(missing)} column (found: {found}).")
    _check_sizes(df)
    if _blank(df["text"]).any():
        raise ProbeDataError(f"Empty text on line(s) {_rows(_blank(df['text']))}: every row "
                             "needs a text to run the model on.")
    if _blank(df["label"]).any():
        raise ProbeDataError(f"Missing label on line(s) {_rows(_blank(df['label']))}: fill them "
                             "in or delete those rows.")
    if "token" in df.columns and _blank(df["token"]).any():
        raise ProbeDataError(f"Empty token on line(s) {_rows(_blank(df['token']))}: give "
                             "every row a token, or drop the token column to read the last token.")
    df, n_duplicates = _drop_duplicates(df)
    if len(df) == 1:
        raise ProbeDataError(("Every row of the file is the same row" if n_duplicates else
                              "The CSV has a single row") + ": a probe needs different examples to "
                             "learn from and to test on.")
    texts = tuple(df["text"].astype(str))
    numbers = pd.to_numeric(df["label"], errors="coerce")
    bad = ~(numbers.abs() <= MAX_LABEL)  # inf, 1e999 and -inf too
    if numbers.notna().all() and bad.any():
        raise ProbeDataError(f"The label on line(s) {_rows(bad)} is infinite or too big "
                             f"({str(df['label'][bad].iloc[0]).strip()[:40]!r}): number labels must be "
                             f"finite numbers of at most {MAX_LABEL:.0e} in size. Fix or delete "
                             "those rows.")
    numeric = numbers.notna().all() and numbers.nunique() >= NUMERIC_MIN_DISTINCT
    labels = tuple(float(v) for v in numbers) if numeric else tuple(
        df["label"].astype(str).str.strip())
    if len(set(labels)) < 2:
        raise ProbeDataError(f"Every row has the label {labels[0]!r}: a probe needs at least two "
                             "classes to tell apart.")
    spans = None
    types = texts
    if "token" in df.columns:
        tokens = df["token"].astype(str).str.strip()
        starts = pd.Series([t.find(w) for t, w in zip(texts, tokens, strict=True)], index=df.index)
        if (starts < 0).any():
            raise ProbeDataError(f"The token is not in its text on line(s) {_rows(starts < 0)} "
                                 "(the match is case-sensitive).")
        spans = tuple((int(s), int(s) + len(w)) for s, w in zip(starts, tokens, strict=True))
        types = tuple(tokens)
    if not numeric:
        check_class_sizes(labels)
    target = "numeric" if numeric else "class"
    about = (f"{len(texts):,} rows, numeric label (Ridge regression)" if numeric else
             f"{len(texts):,} rows, {len(set(labels))} classes")
    if n_duplicates:
        about += f"; {n_duplicates:,} duplicate row(s) dropped"
    return ProbeDataset(name=name, texts=texts, labels=labels, target=target, word_types=types,
                        groups=types, char_spans=spans, is_test=None,
                        default_position="marked" if spans else "last", about=about, key=key)


def subsample(data: ProbeDataset, n: int, seed: int = 0) -> ProbeDataset:
    """At most n rows of data, drawn at random (seeded), in their original order."""
    if len(data) <= n:
        return data
    keep = np.sort(np.random.default_rng(seed).choice(len(data), n, replace=False))

    def pick(column):
        return None if column is None else tuple(column[i] for i in keep)

    return replace(data, texts=pick(data.texts), labels=pick(data.labels),
                   word_types=pick(data.word_types), groups=pick(data.groups),
                   char_spans=pick(data.char_spans), is_test=pick(data.is_test),
                   key=f"{data.key}|sample:{n}:{seed}" if data.key else "")
