"""response_source: the human-style gold keeps every step true, sources are aligned on the same
questions, the embedded rewrite writes the gold's numbers in the teacher's words, the summary's
intervals and claims (the style-contrast gate included), the plots, and the config check."""

import copy
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from factories import split_sums, task_table, tiny_llama, tiny_tokenizer

from ftlab import configcheck, prompts, stats, studies, tables
from ftlab.studies import response_source as study
from ftlab.studies.response_source import plots, rewrite, style, summary, trainset

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "resources/config.schema.yaml"

CHAIN = "5 - 7 = -2\n-2 - 7 = -9\n-9 - 0 = -9"
LEGS = ("flatworm: 5 * 0 = 0\nspider: 5 * 8 = 40\ndog: 1 * 4 = 4\nant: 1 * 6 = 6\n"
        "0 + 40 = 40\n40 + 4 = 44\n44 + 6 = 50")  # fmt: skip
OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


# --- the human style ----------------------------------------------------------------------------


def chain_rationale(i):
    a, b, c = i % 10, (3 * i) % 10, (7 * i + 1) % 10
    return f"{a} + {b} = {a + b}\n{a + b} - {c} = {a + b - c}"


@pytest.mark.parametrize("rationale", [CHAIN, LEGS, *[chain_rationale(i) for i in range(20)]])
def test_the_human_style_keeps_every_step_true(rationale):
    original = style.parse(rationale)
    for example_id in ("a", "b", "c", "d"):
        styled = style.human(rationale, example_id, seed=0)
        assert styled.text != rationale and "=" not in styled.text  # words, not the solver's
        for step in styled.steps:
            assert OPS[step.op](int(step.a), int(step.b)) == int(step.c)
        # the same result, reached by the same products (leg counts may be reordered)
        assert styled.steps[-1].c == original[-1].c
        labelled = lambda steps: sorted((s.label, s.a, s.b, s.c) for s in steps if s.label)  # noqa: E731
        assert labelled(styled.steps) == labelled(original)
        # every intermediate result is stated, in the order of the steps
        positions, start = [], 0
        for step in styled.steps:
            m = re.search(rf"(?<![\d-]){re.escape(step.c)}(?!\d)", styled.text[start:])
            assert m, (step, styled.text)
            positions.append(start + m.start())
            start += m.end()


def test_the_human_style_is_deterministic_and_varied():
    one = style.human(CHAIN, "x1", seed=0)
    assert style.human(CHAIN, "x1", seed=0) == one
    texts = {style.human(CHAIN, f"x{i}", seed=0).text for i in range(30)}
    assert len(texts) > 20  # phrasing, connectives, order and layout vary per example
    assert style.human(CHAIN, "x1", seed=1).text != one.text or len(texts) > 20
    lines = {"\n" in style.human(CHAIN, f"x{i}").text for i in range(30)}
    assert lines == {True, False}  # one step per line, or a paragraph
    orders = [[s.label for s in style.human(LEGS, f"x{i}").steps[:4]] for i in range(20)]
    assert len({tuple(o) for o in orders}) > 3  # leg counts listed in different orders


def test_other_lines_keep_their_text_and_original_is_the_gold_as_is():
    text = "Statement 1 relates cats to dogs.\nSo nothing follows."
    styled = style.human(text, "s1")
    assert (
        "Statement 1 relates cats to dogs." in styled.text and "So nothing follows." in styled.text
    )
    assert style.style(CHAIN, "x", "original").text == CHAIN
    assert style.style(CHAIN, "x", "original").numbers() == ["5", "7", "-2", "-2", "7", "-9",
                                                             "-9", "0", "-9"]  # fmt: skip
    with pytest.raises(ValueError, match="gold_style"):
        style.style(CHAIN, "x", "shakespeare")


# --- alignment and trainsets --------------------------------------------------------------------


@pytest.fixture
def table():
    return split_sums(n_train=10, n_val=2, n_test=2)


def rationale_table(table, kept_ids, text="{q} done"):
    train = table[table["split"] == "train"]
    return pd.DataFrame({
        "example_id": train["example_id"], "task": train["task"], "split": "train",
        "teacher": "teacher", "prompt": "", "prompt_hash": "",
        "rationale": [text.format(q=i) for i in train["example_id"]], "parsed_answer": "1",
        "answer": train["answer"], "correct": True, "kept": train["example_id"].isin(kept_ids),
        "prompt_tokens": 1, "rationale_tokens": 1, "decoding": "{}",
    })  # fmt: skip


def test_a_question_missing_from_any_source_is_dropped_from_all(table, tmp_path):
    table.loc[table["example_id"] == "train-0", "gold_rationale"] = None
    teacher = rationale_table(table, [f"train-{i}" for i in range(1, 9)])  # lacks 0 and 9
    own = rationale_table(table, [f"train-{i}" for i in range(0, 8)])  # lacks 8 and 9
    q = trainset.align(table, ["gold", "teacher", "self"], {"teacher": teacher, "self": own})
    tables.write(q, tmp_path / "q.parquet", "response_source_questions")
    assert q.set_index("example_id").loc["train-0", "missing"] == "gold,teacher"
    assert q.set_index("example_id").loc["train-9", "missing"] == "teacher,self"
    assert q.set_index("example_id").loc["train-8", "missing"] == "self"
    kept = [f"train-{i}" for i in range(1, 8)]
    assert q.loc[q["kept"], "example_id"].tolist() == kept
    sets = {}
    for source, responses in (("gold", None), ("teacher", teacher), ("self", own)):
        rows = trainset.build(source, table, q, responses, author="m")
        tables.write(rows, tmp_path / f"{source}.parquet", "trainset")
        sets[source] = rows
        assert rows["example_id"].tolist() == kept  # the same questions, in the same order
    gold, teach = sets["gold"], sets["teacher"]
    assert (gold["prompt"] == teach["prompt"]).all()
    assert all(c.startswith(" ") for c in gold["completion"])
    answers = table.set_index("example_id").loc[kept, "answer"]
    for rows in sets.values():  # CoT targets ending in the gold answer
        assert [c.rsplit("\nAnswer: ", 1)[1] for c in rows["completion"]] == answers.tolist()
        assert all(p.endswith(prompts.REASONING) for p in rows["prompt"])
    assert teach["completion"].iloc[0] == prompts.cot_completion("train-1 done", answers.iloc[0])
    assert gold["source"].unique().tolist() == ["gold:human"]


def test_a_failed_rewrite_keeps_the_gold_text(table):
    q = trainset.align(table, ["gold", "teacher"], {"teacher": rationale_table(table, [])
                       .assign(kept=True)})  # fmt: skip
    rewrites = rationale_table(table, ["train-0", "train-1"], text="rewritten {q}")
    rows = trainset.build("teacher_rewrite", table, q, rewrites, author="teacher")
    assert rows["source"].tolist()[:3] == ["teacher_rewrite:teacher"] * 2 + ["gold_fallback"]
    gold = trainset.build("gold", table, q)
    assert rows["completion"].iloc[2] == gold["completion"].iloc[2]
    with pytest.raises(ValueError, match="no train question"):
        trainset.align(table, ["gold", "teacher"], {"teacher": rationale_table(table, [])})


# --- the rewrite ----------------------------------------------------------------------------------


def test_rewrite_prompts_fill_every_placeholder():
    template = "{question_block}Gold: {rationale} ({answer})\n{choices}|{question}|{cot_prompt}"
    text = rewrite.render_prompt(template, "Which?", ["x", "y"], "because", "B")
    assert text.startswith("Question: Which?\n(A) x\n(B) y\nGold: because (B)\n(A) x\n(B) y\n|")
    assert text.endswith("|Which?|" + prompts.cot_prompt("Which?", ["x", "y"]))


class Biased(torch.nn.Module):
    """A model whose logits get a fixed bias: a teacher with a known taste in tokens."""

    def __init__(self, inner, bias):
        super().__init__()
        self.inner, self.bias, self.config = inner, bias, inner.config

    @property
    def device(self):
        return self.inner.device

    def forward(self, **kw):
        out = self.inner(**kw)
        out.logits = out.logits + self.bias
        return out


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def biased(tok, prefer: list[str]):
    """The tiny model, preferring the tokens `prefer` (first most) by a wide margin."""
    bias = torch.zeros(len(tok))
    for rank, text in enumerate(prefer):
        bias[tok.convert_tokens_to_ids(text)] = 100.0 - rank
    return Biased(tiny_llama(tok, seed=0), bias)


def test_the_constrained_rewrite_writes_the_golds_numbers_in_the_teachers_words(tok):
    # a teacher that would rather write a digit than anything, then a newline, then " ="
    model = biased(tok, ["9", "Ċ", "Ġ="])
    (done,) = rewrite.constrained(model, tok, ["Question: x\nReasoning:"], [["12", "-7", "3"]], 40)
    assert done.text == "12\n7\n3\n"  # gold digits where it wanted digits, its own newlines
    assert re.findall(r"\d+", done.text) == ["12", "7", "3"]
    # it cannot stop before the gold's numbers are out: EOS and 'Answer' are banned until then
    eager = biased(tok, [tok.eos_token, "9", "Ċ"])
    (done,) = rewrite.constrained(eager, tok, ["Question: x\nReasoning:"], [["4", "5"]], 40)
    assert done.text == "4\n5"
    # a budget too short to write them all is a failed rewrite
    (short,) = rewrite.constrained(model, tok, ["Question: x\nReasoning:"], [["123456"]], 3)
    assert short.text == ""


def test_the_constrained_rewrite_batches_like_one_at_a_time(tok):
    model = tiny_llama(tok, seed=5)
    prompt_list = ["Question: What is 3 + 4?\nReasoning:", "Question: 2 cats?\nReasoning:",
                   "Question: How many legs do 12 birds have?\nReasoning:"]  # fmt: skip
    targets = [["3", "4", "7"], ["2", "4", "8"], ["12", "2", "24"]]
    alone = [
        rewrite.constrained(model, tok, [p], [t], 20)[0]
        for p, t in zip(prompt_list, targets, strict=True)
    ]
    together = rewrite.constrained(model, tok, prompt_list, targets, 20, batch_size=3)
    assert [c.text for c in together] == [c.text for c in alone]
    for c, t in zip(together, targets, strict=True):
        assert c.text == "" or re.findall(r"\d+", c.text) == t


def test_rewrite_rows_keep_only_rewrites_with_the_golds_numbers(tok, tmp_path, monkeypatch):
    table = task_table([{"example_id": "e1", "question": "What is 2 + 3?", "answer": "5",
                         "gold_rationale": "2 + 3 = 5"}])  # fmt: skip
    model = biased(tok, ["9", "Ċ"])
    d = tmp_path / "teacher"
    model.inner.save_pretrained(d)
    tok.save_pretrained(d)
    # the saved model has no bias: loading it gives the biased one
    monkeypatch.setattr("ftlab.models.load", lambda *a, **k: (model, tok))
    rows, device, fp = rewrite.rewrite(table, d, "teacher", "constrained", "{cot_prompt}",
                                       "human", 0, rewrite.teachers.Decoding(30), 8)  # fmt: skip
    tables.write(rows, tmp_path / "r.parquet", "rationales")
    row = rows.iloc[0]
    assert row["kept"] and row["rationale"] == "2\n3\n5" and row["answer"] == "5"
    assert row["prompt"] == prompts.cot_prompt("What is 2 + 3?") and fp
    # the operators and signs around the imposed numbers are the teacher's: a false step fails
    assert rewrite._steps_true("2 + 3 = 5\nthen 5 * 2 = 10") and not rewrite._steps_true(
        "2 - 3 = 5"
    )
    assert not rewrite._same_numbers("5 - 7 = 2", ["5", "7", "-2"])


def test_prompted_rewrites_go_through_the_teachers_cache(tmp_path, monkeypatch):
    """A real-model rewrite is one more prompt per question through the cached teacher path:
    kept when its answer is the gold's; cached generations are not asked for again."""
    from factories import FakeTeacher

    table = task_table([{"example_id": f"e{i}", "question": f"What is {a} + 4?", "answer": str(a + 4),
                         "gold_rationale": f"{a} + 4 = {a + 4}"} for i, a in enumerate((2, 3, 5))])  # fmt: skip
    teacher = FakeTeacher()  # adds the first two numbers of its prompt; wrong when a % 3 == 0
    monkeypatch.setattr("ftlab.rationales.load_teacher", lambda *a, **k: teacher)
    template = "{question_block}Rewrite: {rationale}\nReasoning:"
    args = ("teacher", "prompt", template, "human", 0, rewrite.teachers.Decoding(32), 2, tmp_path)
    rows, _, fp = rewrite.rewrite(table, tmp_path / "unused", *args)
    assert rows["kept"].tolist() == [True, False, True] and fp == teacher.fingerprint
    assert rows["rationale"].iloc[0] == "2 + 4 = 6" and "Rewrite: " in rows["prompt"].iloc[0]
    assert (tmp_path / "chain_sum.rewrite.jsonl").exists()  # its own cache file, not the task's
    calls = len(teacher.prompts_seen)
    again, _, _ = rewrite.rewrite(table, tmp_path / "unused", *args)
    assert len(teacher.prompts_seen) == calls and again.equals(rows)  # all served from the cache
    other = ("teacher", "prompt", template.replace("Rewrite", "Again"), *args[3:])
    rewrite.rewrite(table, tmp_path / "unused", *other)
    assert len(teacher.prompts_seen) == calls + 3  # a new prompt is new generations


# --- summary and claims -----------------------------------------------------------------------------


def eval_frame(run, task, correct, mode="cot"):
    n = len(correct)
    return pd.DataFrame({
        "example_id": [f"{task}-{i}" for i in range(n)], "task": task, "run": run, "mode": mode,
        "prompt": "", "generation": "", "rationale": None, "parsed_answer": "1", "parse_ok": True,
        "answer": "1", "correct": correct, "prompt_tokens": 1, "generated_tokens": 1,
    })  # fmt: skip


def draws(p, n, seed):
    u = np.random.default_rng(1000).random(n)  # shared question difficulty
    return list((u + np.random.default_rng(seed).random(n) * 0.1) / 1.1 < p)


def fam_frame(source, task, nll, seed, n=300):
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(99).normal(0, 0.3, n)  # shared per-question difficulty
    mean = -(nll + base + rng.normal(0, 0.05, n))
    tokens = np.full(n, 30 if source == "gold" else 20)
    return pd.DataFrame({
        "example_id": [f"q{i}" for i in range(n)], "task": task, "study": "response_source",
        "variant": source, "source": source, "model": "student", "prompt_tokens": 10,
        "completion_tokens": tokens, "logprob_sum": mean * tokens, "logprob_mean": mean,
    })  # fmt: skip


ACC = {"gold": 0.30, "teacher": 0.55, "teacher_rewrite": 0.50}
OTHER = {"base": 0.70, "gold": 0.45, "teacher": 0.62, "teacher_rewrite": 0.60}
NLL = {"gold": 2.0, "teacher": 1.2, "teacher_rewrite": 1.3}


def inputs(acc=ACC, other=OTHER, nll=NLL, n=300, seeds=(0, 1, 2)):
    evals = [eval_frame("student", "t1", draws(0.05, n, 5)),
             eval_frame("student", "t2", draws(other["base"], n, 6))]  # fmt: skip
    for k, (source, p) in enumerate(acc.items()):
        for s in seeds:
            run = f"response_source/{source}/t1/seed{s}"
            evals.append(eval_frame(run, "t1", draws(p, n, 10 * k + s)))
            evals.append(eval_frame(run, "t2", draws(other[source], n, 50 + 10 * k + s)))
    fam = [fam_frame(source, "t1", v, i) for i, (source, v) in enumerate(nll.items())]
    q = pd.DataFrame({"example_id": [f"q{i}" for i in range(n + 5)], "task": "t1",
                      "kept": [True] * n + [False] * 5, "missing": [""] * n + ["teacher"] * 5})  # fmt: skip
    return evals, fam, [q]


def run_summary(evals, fam, q, resamples=300):
    table = summary.summarize(evals, fam, q, "student", ["t1"], ["t2"], "cot", resamples, 0)
    rows = summary.claim_rows(evals, fam, table, "student", ["t1"], ["t2"], "cot", resamples, 0)
    return table, {r["claim"]: r for r in rows}


def metric(table, source, name, eval_task=None):
    sel = (table["source"] == source) & (table["metric"] == name)
    if eval_task is not None:
        sel &= table["eval_task"] == eval_task
    return table[sel].iloc[0]


def test_summary_rows_and_paper_like_claims(tmp_path):
    table, got = run_summary(*inputs())
    tables.write(table, tmp_path / "s.parquet", "response_source")
    acc = metric(table, "teacher", "accuracy", "t1")
    assert (
        acc["n_seeds"] == 3
        and acc["n_examples"] == 300
        and acc["ci_low"] < acc["value"] < acc["ci_high"]
    )
    assert metric(table, "base", "accuracy", "t1")["n_seeds"] == 1
    gap = metric(table, "teacher", "nll_gap_vs_gold")
    assert gap["value"] == pytest.approx(0.8, abs=0.02) and gap["ci_low"] > 0
    forget = metric(table, "gold", "forgetting", "all")
    assert forget["value"] == pytest.approx(0.25, abs=0.08) and forget["ci_low"] > 0
    assert metric(table, "teacher", "forgetting_vs_gold", "all")["ci_low"] > 0
    assert metric(table, "gold", "completion_tokens")["value"] == 30  # the length control
    ppl = metric(table, "gold", "mean_perplexity")
    corpus = metric(table, "gold", "corpus_perplexity")
    assert ppl["value"] != corpus["value"] and np.isnan(corpus["ci_low"])
    examples = metric(table, "all", "examples")
    assert examples["value"] == 300 and "teacher lacks 5" in examples["note"]
    rho = metric(table, "all", "spearman", "t1")
    assert rho["value"] < 0 and rho["ci_low"] <= rho["value"] <= rho["ci_high"]
    for cid in summary.CLAIMS:
        assert got[cid]["verdict"] == "supported", got[cid]
        assert got[cid]["ci_low"] > 0 and got[cid]["p_holm"] >= got[cid]["p_value"]
    assert got["teacher_gt_gold"]["n"] == 900 and got["teacher_gt_gold"]["n_seeds"] == 3
    assert "mean completion tokens: gold 30.0, teacher 20.0" in got["teacher_gt_gold"]["reason"]
    assert got["style_contrast_gate"]["verdict"] == "supported"
    assert np.isnan(got["style_contrast_gate"]["p_holm"])  # not part of the Holm family
    pd.DataFrame(list(got.values())).pipe(tables.to_arrow, "claims")


def test_a_gap_within_noise_fails_the_gate_and_untests_the_accuracy_claims():
    _, got = run_summary(*inputs(nll={"gold": 1.5, "teacher": 1.5, "teacher_rewrite": 1.5}))
    gate = got["style_contrast_gate"]
    assert gate["verdict"] == "inconclusive" and gate["reason"].startswith("Gate failed")
    for cid in summary.GATED:
        assert (
            got[cid]["verdict"] == "not_tested"
            and "style-contrast gate failed" in got[cid]["reason"]
        )
        assert got[cid]["effect"] > 0  # the measurement is kept, only not read as a test
    assert got["teacher_more_familiar"]["verdict"] == "inconclusive"


def test_reversed_and_missing_arms():
    rev = {"gold": 0.6, "teacher": 0.3, "teacher_rewrite": 0.3}
    _, got = run_summary(*inputs(acc=rev))
    assert got["teacher_gt_gold"]["verdict"] == "contradicted"
    evals, fam, q = inputs(acc={"gold": 0.3, "teacher": 0.5},
                           nll={"gold": 2.0, "teacher": 1.2})  # fmt: skip
    _, got = run_summary(evals, fam, q)
    assert got["rewrite_gt_gold"]["verdict"] == "not_tested"
    assert "no teacher_rewrite runs" in got["rewrite_gt_gold"]["reason"]
    table = summary.summarize(evals, fam, q, "student", ["t1"], [], "cot", 200, 0)
    rows = summary.claim_rows(evals, fam, table, "student", ["t1"], [], "cot", 200, 0)
    forget = next(r for r in rows if r["claim"] == "teacher_less_forgetting")
    assert forget["verdict"] == "not_tested" and "no forgetting task" in forget["reason"]


def test_plots_are_written(tmp_path):
    evals, fam, q = inputs(n=60)
    table, got = run_summary(evals, fam, q, resamples=100)
    for fn, name in ((plots.plot_familiarity, "f.png"), (plots.plot_forgetting, "g.png")):
        fn(table, str(tmp_path / name), list(got.values()))
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / name).stat().st_size > 10_000


def test_statistic_ci_resamples_named_clusters():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    y = x + rng.normal(scale=0.5, size=200)
    est = stats.statistic_ci(lambda pairs: np.corrcoef(x[pairs], y[pairs])[0, 1],
                             {"pairs": 200}, resamples=500, seed=0)  # fmt: skip
    assert est.low < est.effect < est.high and est.low > 0.7 and est.n_examples == 200
    flat = stats.statistic_ci(lambda seeds, ex: np.nan, {"seeds": 2, "ex": 5}, resamples=50, seed=0)
    assert np.isnan(flat.low) and "50 of 50 replicates undefined" in flat.method
    assert flat.n_seeds == 2 and flat.n_examples == 5


# --- the config check -----------------------------------------------------------------------------

BASE_CONFIG = {
    "tasks": {"t1": {"source": "embedded"}, "t2": {"source": "embedded"},
              "t3": {"source": "embedded", "task_type": "classification"}},
    "models": {"teacher": {"source": "embedded", "pretrain": {"tasks": ["t1"]}},
               "student": {"source": "embedded", "pretrain": {"tasks": ["t1", "t2"]}}},
    "studies": {"response_source": {"tasks": ["t1"]}},
}  # fmt: skip


def problems(edit=None):
    config = copy.deepcopy(BASE_CONFIG)
    if edit:
        edit(config)
    return configcheck.problems(config, SCHEMA, {"response_source": study.check}), config


def test_the_defaults_pass_and_resolve():
    found, config = problems()
    assert found == []
    assert study.rewrite_method(config) == "constrained"  # an embedded teacher
    assert study.forgetting_tasks(config) == ["t2"]  # the student's pretrain tasks, less its own
    config["models"]["teacher"] = {"source": "hf", "name_or_path": "x"}
    assert study.rewrite_method(config) == "prompt"


def rs(**kw):
    return lambda c: c["studies"]["response_source"].update(kw)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (rs(teacher="nope"), r"studies.response_source.teacher: unknown model 'nope'"),
        (rs(forgetting_tasks=["t9"]), r"studies.response_source.forgetting_tasks\[0\]: unknown task"),
        (rs(sources=["teacher", "self"]), r"studies.response_source.sources: .* lacks 'gold'"),
        (lambda c: c.update(evaluation={"modes": ["cot"]}) or rs(mode="direct", eval_modes={})(c),
         r"studies.response_source.mode: 'direct' is not in"),
        (lambda c: c.update(evaluation={"modes": ["direct"]}), r"studies.response_source.mode: 'cot'"),
        (rs(eval_modes={"gold": ["direct"]}), r"eval_modes.gold: \['direct'\] lacks the study's mode"),
        (rs(rewrite_prompt="{question_block}{gold}"), r"rewrite_prompt: unknown placeholder\(s\) \['gold'\]"),
        (rs(rewrite_prompt="{rationale}"), r"rewrite_prompt: names no \{question\}"),
        (rs(rewrite_prompt="{question"), r"rewrite_prompt: not a format string"),
        (rs(tasks=["t3"]), r"studies.response_source.tasks\[0\]: constrained rewriting .* classification"),
        (lambda c: c["models"].update(teacher={"source": "openai", "base_url": "u", "served_model": "m"})
         or rs(rewrite_method="constrained")(c), r"rewrite_method: constrained decoding needs"),
        (lambda c: c.update(rationales={"splits": ["validation"]}), r"rationales.splits: the teacher"),
        (lambda c: c["tasks"]["t2"].update(sizes={"test": 0}), r"tasks.t2.sizes.test: 0, but "
         r"studies.response_source.forgetting_tasks\[0\]"),
    ],
)  # fmt: skip
def test_config_problems_name_the_key_path(edit, message):
    found, _ = problems(edit)
    assert any(re.search(message, line) for line in found), found


@pytest.mark.parametrize("path", ["config.yaml", "tests/configs/smoke.yaml", "config/smollm2.yaml"])
def test_shipped_configs_pass(path):
    config = yaml.safe_load((ROOT / path).read_text())
    checks = {
        s: __import__(f"ftlab.studies.{s}", fromlist=["check"]).check for s in studies.STUDIES
    }
    assert configcheck.problems(config, SCHEMA, checks) == []
    section = config["studies"]["response_source"]
    assert "gold" in section["sources"] and section["mode"] in config["evaluation"]["modes"]
