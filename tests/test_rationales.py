"""Teacher rationales: the right rows and filter, and a per-prompt cache that survives kill -9."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from factories import FakeTeacher
from factories import rationale_settings as settings
from factories import split_sums as task_table

from ftlab import prompts, rationales, tables, teachers

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def test_rows_filter_and_schema(tmp_path):
    teacher = FakeTeacher()
    out = rationales.generate(
        task_table(), teacher, "teacher", settings(), rationales.Cache(tmp_path, "chain_sum")
    )
    tables.write(out, tmp_path / "r.parquet", "rationales")  # schema holds
    assert sorted(out["split"].unique()) == ["train", "validation"]  # test split is never touched
    assert len(out) == 15
    row = out.iloc[0]
    assert row["prompt"] == prompts.cot_prompt("What is 1 + 3?")
    assert row["rationale"] == "1 + 3 = 4" and row["parsed_answer"] == "4" and row["correct"]
    wrong = out["prompt"].str.contains(
        r"What is (?:3|6|9|12|102) \+", regex=True
    )  # FakeTeacher errs there
    assert wrong.sum() == 5 and not out[wrong]["correct"].any() and not out[wrong]["kept"].any()
    assert (out["kept"] == out["correct"]).all()  # filter: correct
    assert json.loads(row["decoding"]) == {"do_sample": False, "max_new_tokens": 32}
    everything = rationales.generate(
        task_table(),
        teacher,
        "teacher",
        settings(filter="all"),
        rationales.Cache(tmp_path, "chain_sum"),
    )
    assert everything["kept"].all() and (everything["correct"] == out["correct"]).all()


def test_limit_takes_first_questions_per_split(tmp_path):
    out = rationales.generate(
        task_table(), FakeTeacher(), "t", settings(limit=2), rationales.Cache(tmp_path, "x")
    )
    assert out["example_id"].tolist() == ["train-0", "train-1", "validation-0", "validation-1"]


def test_cache_reuses_generations_across_jobs_and_keys_on_decoding(tmp_path):
    first, second, other = FakeTeacher(), FakeTeacher(), FakeTeacher()
    a = rationales.generate(
        task_table(), first, "t", settings(), rationales.Cache(tmp_path, "chain_sum")
    )
    assert len(first.prompts_seen) == 15
    # another job (another cache file in the same directory) reuses every generation
    b = rationales.generate(
        task_table(), second, "t", settings(), rationales.Cache(tmp_path, "other_job")
    )
    assert second.calls == []
    pd.testing.assert_frame_equal(a, b)
    # a different decoding or a different teacher is a different generation
    rationales.generate(
        task_table(), other, "t", settings(max_new_tokens=8), rationales.Cache(tmp_path, "x")
    )
    assert len(other.prompts_seen) == 15
    other.fingerprint = "fake-teacher-v2"
    other.calls.clear()
    rationales.generate(task_table(), other, "t", settings(), rationales.Cache(tmp_path, "x"))
    assert len(other.prompts_seen) == 15


def test_torn_last_line_is_ignored_and_cut(tmp_path):
    teacher = FakeTeacher()
    rationales.generate(
        task_table(n_train=4, n_val=0), teacher, "t", settings(), rationales.Cache(tmp_path, "c")
    )
    path = tmp_path / "c.jsonl"
    with open(path, "a") as f:
        f.write('{"key": "abc", "text": "half')  # a writer killed mid-line
    cache = rationales.Cache(tmp_path, "c")
    assert len(cache.entries) == 4
    assert path.read_text().endswith("\n")  # cut, so the next append starts on a fresh line
    cache.put([("k", teachers.Completion("t", 1, 1))])
    assert len(rationales.Cache(tmp_path, "c").entries) == 5


CHILD = """
import sys, time
sys.path.insert(0, {scripts!r}); sys.path.insert(0, {tests!r})
from factories import FakeTeacher, rationale_settings as settings, split_sums as task_table
from ftlab import rationales
rationales.generate(task_table(n_train=40, n_val=0), FakeTeacher(delay=0.3), "t", settings(),
                    rationales.Cache({cache!r}, "chain_sum"), progress=False)
"""


def test_kill_9_then_rerun_generates_only_what_is_missing(tmp_path):
    cache_dir = tmp_path / "cache"
    code = CHILD.format(
        scripts=str(SCRIPTS), tests=str(Path(__file__).parent), cache=str(cache_dir)
    )
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], start_new_session=True)
    path = cache_dir / "chain_sum.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not path.exists() or path.read_text().count("\n") < 8):
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    with open(path, "a") as f:
        f.write('{"key": "torn')  # and as if the kill had landed mid-write
    cached = {json.loads(line)["key"] for line in path.read_text().splitlines()[:-1]}
    assert 8 <= len(cached) < 40  # killed part-way

    table = task_table(n_train=40, n_val=0)
    resumed_teacher = FakeTeacher()
    resumed = rationales.generate(
        table, resumed_teacher, "t", settings(), rationales.Cache(cache_dir, "chain_sum")
    )
    s = settings()
    again = {
        rationales.cache_key(FakeTeacher.fingerprint, s.decoding, p)
        for p in resumed_teacher.prompts_seen
    }
    assert again.isdisjoint(cached)  # nothing finished was generated twice
    assert len(resumed_teacher.prompts_seen) == 40 - len(cached)

    fresh = rationales.generate(
        table, FakeTeacher(), "t", s, rationales.Cache(tmp_path / "fresh", "chain_sum")
    )
    pd.testing.assert_frame_equal(resumed, fresh)


def test_bad_filter_is_a_clear_error():
    with pytest.raises(ValueError, match="rationales.filter"):
        rationales.Settings.from_config({"filter": "best"})
