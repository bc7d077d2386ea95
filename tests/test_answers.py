"""Answer normalisation: the table every stage relies on to call an answer right, wrong or unparsable."""

import pandas as pd
import pytest

from ftlab import answers

CHOICES = ["a cat", "a dog", "a fish"]

PARSE = [
    # raw, task_type, choices, canonical
    ("1,000", "numeric", None, "1000"),
    ("1000.0", "numeric", None, "1000"),
    ("The answer is 42 apples, not 7.", "numeric", None, "42"),
    ("-17", "numeric", None, "-17"),
    ("$2,340", "numeric", None, "2340"),
    ("3/4", "numeric", None, "0.75"),
    ("2.50", "numeric", None, "2.5"),
    (r"$\frac{1}{3}$", "numeric", None, "1/3"),
    ("no number here", "numeric", None, None),
    ("", "numeric", None, None),
    (None, "numeric", None, None),
    ("(B)", "choice", CHOICES, "B"),
    ("B", "choice", CHOICES, "B"),
    ("b", "choice", CHOICES, "B"),
    ("C) a fish", "choice", CHOICES, "C"),
    ("A Dog", "choice", CHOICES, "B"),
    ("I think it is (C).", "choice", CHOICES, "C"),
    ("D", "choice", CHOICES, None),
    ("a horse", "choice", CHOICES, None),
    ("Yes", "classification", None, "Yes"),
    ("yes.", "classification", None, "Yes"),
    ("TRUE", "classification", None, "Yes"),
    ("no, it does not", "classification", None, "No"),
    ("False", "classification", None, "No"),
    ("  Mother-In-Law ", "short_answer", None, "mother-in-law"),
    ("grand   father.", "short_answer", None, "grand father"),
    ("olleh", "generation", None, "olleh"),
    ("   ", "generation", None, None),
]


@pytest.mark.parametrize(("raw", "task_type", "choices", "want"), PARSE)
def test_parse_normalises(raw, task_type, choices, want):
    assert answers.parse(raw, task_type, choices) == want


CORRECT = [
    # parsed-from raw, gold, task_type, choices, correct?
    ("1,000", "1000.0", "numeric", None, True),
    ("28080", "28080", "numeric", None, True),
    ("0.5", "1/2", "numeric", None, True),
    ("12", "13", "numeric", None, False),
    ("(B)", "B", "choice", CHOICES, True),
    ("a dog", "B", "choice", CHOICES, True),
    ("B", "a dog", "choice", CHOICES, True),
    ("A", "B", "choice", CHOICES, False),
    ("true", "Yes", "classification", None, True),
    ("No", "Yes", "classification", None, False),
    ("Mother-in-law", "mother-in-law", "short_answer", None, True),
    ("Olleh", "olleh", "generation", None, True),
    ("olle", "olleh", "generation", None, False),
]


@pytest.mark.parametrize(("raw", "gold", "task_type", "choices", "want"), CORRECT)
def test_is_correct_compares_normalised_answers(raw, gold, task_type, choices, want):
    parsed = answers.parse(raw, task_type, choices)
    assert answers.is_correct(parsed, gold, task_type, choices) is want


def test_unparsable_answer_is_never_correct():
    assert answers.is_correct(None, "5", "numeric") is False


@pytest.mark.parametrize("raw", [object(), 12, ["x"], "\udc80", "9" * 5000])
@pytest.mark.parametrize("task_type", answers.TASK_TYPES)
def test_parse_never_raises(raw, task_type):
    result = answers.parse(raw, task_type, CHOICES)
    assert result is None or isinstance(result, str)


def test_parse_failures_counts_unparsed():
    parsed = pd.Series([answers.parse(x, "numeric") for x in ["1", "x", None, "2.0"]])
    assert answers.parse_failures(parsed) == 2
