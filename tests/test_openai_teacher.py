"""The OpenAI-compatible teacher against a real HTTP server that fails on a schedule."""

from __future__ import annotations

import json
import logging
import random
import re

import pandas as pd
import pytest
from factories import sum_row
from factories import task_table as table_of
from openai_server import FaultyServer

from ftlab import hub, logs, openai_teacher, prompts, provenance, rationales, tables, teachers

KEY = "sk-ftlab-test-7f3a9c1e5b2d4680-do-not-leak"
KEY_ENV = "FTLAB_TEST_OPENAI_KEY"


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """Requests to the test server go straight to 127.0.0.1, whatever proxy the machine sets."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def solve(user_message: str) -> str:
    """The "model": reads the sum out of the question and answers it in the plain format."""
    a, b = map(int, re.search(r"What is (\d+) \+ (\d+)\?", user_message).groups())
    return f"{a} + {b} = {a + b}.\n{prompts.ANSWER} {a + b}"


def task_table(n: int) -> pd.DataFrame:
    rng = random.Random(0)
    pairs = [(rng.randint(0, 99), rng.randint(0, 99)) for _ in range(n)]
    return table_of(
        sum_row(f"sum-{i}", a, b, "{a} + {b} = {s}.", task="sums") for i, (a, b) in enumerate(pairs)
    )


def spec(server: FaultyServer, **overrides) -> dict:
    return {
        "source": "openai",
        "role": "teacher",
        "base_url": server.base_url,
        "served_model": server.served_model,
        "api_key_env": KEY_ENV,
        "concurrency": 4,
        "timeout_s": 0.5,
        "max_retries": 3,
        "backoff_s": 0.01,
        **overrides,
    }


def test_rationales_complete_through_faults_and_the_key_leaks_nowhere(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    faults = {2: "500", 4: "slow", 6: "malformed", 8: "429", 9: "500", 11: "drop"}
    table = task_table(24)
    model_dir, log_path = tmp_path / "models" / "api_teacher", tmp_path / "logs" / "job.log"
    log_path.parent.mkdir(parents=True)
    with FaultyServer(solve, faults, api_key=KEY, slow_s=1.5) as server:
        model_spec = spec(server)
        hub.write_openai_pointer(model_spec, model_dir)
        with logs.to(str(log_path)):
            teacher = rationales.load_teacher(model_dir)
            result = rationales.generate(
                table=table,
                teacher=teacher,
                teacher_name="api_teacher",
                settings=rationales.Settings(batch_size=8, splits=("train",)),
                cache=rationales.Cache(tmp_path / "cache", "sums"),
                progress=False,
            )
            prov = provenance.collect("generate_rationales", {}, {"spec": model_spec}, seed=0)
            prov["teacher_fingerprint"] = teacher.fingerprint
            tables.write(result, tmp_path / "rationales.parquet", "rationales", prov)
        sent = list(server.requests)

    assert isinstance(teacher, openai_teacher.OpenAITeacher)
    # Every question answered, every answer right, despite one fault of each kind on the way.
    assert len(result) == 24 and result["correct"].all() and result["kept"].all()
    assert (result["rationale_tokens"] > 0).all() and (result["prompt_tokens"] > 0).all()
    assert teacher.faults == {
        "http_500": 2,
        "timeout": 1,
        "malformed": 1,
        "http_429": 1,
        "connection": 1,
    }
    assert len(sent) == 24 + len(faults)  # each fault cost exactly one retry
    assert sent[0]["model"] == "test-model" and sent[0]["temperature"] == 0.0
    assert sent[0]["messages"][-1]["content"].endswith(prompts.REASONING)
    # The fault counts are in the job's log.
    text = log_path.read_text()
    totals = "in all 24 completions, faults {'connection': 1, 'http_429': 1, 'http_500': 2, 'malformed': 1, 'timeout': 1}"
    assert totals in text
    # The key reached the server (it checks it) but no artifact, log or metadata.
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {
        "openai.json",
        "job.log",
        "sums.jsonl",
        "rationales.parquet",
    }
    for path in written:
        assert KEY.encode() not in path.read_bytes(), f"API key leaked into {path}"
    pointer = json.loads((model_dir / "openai.json").read_text())
    assert pointer["api_key_env"] == KEY_ENV and pointer["served_model"] == "test-model"


def test_fingerprint_names_the_server_and_model_not_the_tuning(tmp_path):
    base = hub.OpenAISettings("http://h:8000/v1", "m", timeout_s=5)
    same = hub.OpenAISettings("http://h:8000/v1", "m", timeout_s=50, concurrency=2)
    other = hub.OpenAISettings("http://h:8000/v1", "m2")
    fp = openai_teacher.OpenAITeacher(settings=base).fingerprint
    assert fp == openai_teacher.OpenAITeacher(settings=same).fingerprint
    assert fp != openai_teacher.OpenAITeacher(settings=other).fingerprint


def test_a_wrong_key_fails_at_once_naming_the_variable_not_the_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-123")
    with FaultyServer(solve, api_key=KEY) as server:
        teacher = openai_teacher.OpenAITeacher(settings=hub.OpenAISettings.from_spec(spec(server)))
        with pytest.raises(openai_teacher.ServerError, match=f"401.*\\${KEY_ENV}") as err:
            teacher.complete([prompts.cot_prompt("What is 1 + 2?")], teachers.Decoding())
        assert len(server.requests) == 0  # rejected before it counted: no retries on 401
    assert "sk-wrong-key-123" not in str(err.value)


def test_retries_run_out_with_a_clear_error(caplog):
    with FaultyServer(solve, {1: "500", 2: "500", 3: "500"}) as server:
        teacher = openai_teacher.OpenAITeacher(
            settings=hub.OpenAISettings.from_spec(spec(server, max_retries=2, api_key_env=None))
        )
        with (
            caplog.at_level(logging.WARNING),
            pytest.raises(openai_teacher.ServerError, match="3 attempts"),
        ):
            teacher.complete([prompts.cot_prompt("What is 1 + 2?")], teachers.Decoding())
    assert teacher.faults == {"http_500": 3}
    assert caplog.text.count("HTTP 500") == 2  # one warning per retry
