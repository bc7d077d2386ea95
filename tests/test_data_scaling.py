"""data_scaling: nested subsets per seed, the error split, claims from the fit's intervals, the
summary table and plot, and the config check."""

import copy
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from factories import split_sums

from ftlab import configcheck, prompts, runs, studies, tables
from ftlab.studies import data_scaling as study
from ftlab.studies.data_scaling import plots as P
from ftlab.studies.data_scaling import summary as S
from ftlab.studies.data_scaling import trainset

ROOT = Path(__file__).resolve().parents[1]
SIZES = (16, 32, 64, 128, 256)
SEEDS = (0, 1, 2)
EXAMPLES = 200


# --- nested subsets -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def table():
    return split_sums(n_train=300, n_val=5, n_test=5).assign(task="chain_sum")


def ids(frame):
    return frame["example_id"].tolist()


def test_a_seeds_subsets_are_nested_and_seeds_differ(table):
    for seed in SEEDS:
        small, large = trainset.build(table, 16, seed), trainset.build(table, 32, seed)
        assert len(small) == 16 and len(large) == 32
        assert ids(large)[:16] == ids(small)  # N=32 holds N=16, as its first rows
        assert set(ids(small)) <= set(ids(large))
        assert ids(trainset.build(table, 300, seed))[:32] == ids(large)
    first = [set(ids(trainset.build(table, 32, s))) for s in SEEDS]
    assert len({frozenset(f) for f in first}) == len(SEEDS)  # every seed draws its own subset
    assert all(len(first[0] & other) < 32 for other in first[1:])


def test_the_order_depends_on_the_seed_and_the_ids_only(table):
    shuffled = table.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert trainset.order(shuffled, 1) == trainset.order(table, 1)
    # an example added to the pool does not reorder the others
    fewer = table[table["example_id"] != "train-7"]
    assert [i for i in trainset.order(table, 1) if i != "train-7"] == trainset.order(fewer, 1)
    assert not set(trainset.order(table, 0)) & {i for i in table["example_id"] if "test" in i}


def test_rows_are_gold_cot_targets_and_valid_trainset_tables(table, tmp_path):
    rows = trainset.build(table, 16, 2)
    tables.write(rows, tmp_path / "t.parquet", "trainset")
    assert set(rows["variant"]) == {"n16"} and set(rows["study"]) == {"data_scaling"}
    assert set(rows["source"]) == {"gold"}
    gold = table.set_index("example_id")
    for r in rows.itertuples(index=False):
        ex = gold.loc[r.example_id]
        assert r.prompt == prompts.cot_prompt(ex["question"]) and r.prompt.endswith("Reasoning:")
        assert r.completion == prompts.cot_completion(ex["gold_rationale"], ex["answer"])
        assert r.completion.endswith(f"\nAnswer: {ex['answer']}")


def test_examples_without_a_gold_rationale_are_left_out_and_n_is_checked(table):
    holes = table.copy()
    holes.loc[holes["example_id"].isin(["train-0", "train-1"]), "gold_rationale"] = None
    holes.loc[holes["example_id"] == "train-2", "gold_rationale"] = "  "
    assert len(trainset.order(holes, 0)) == 297
    assert not {"train-0", "train-1", "train-2"} & set(ids(trainset.build(holes, 297, 0)))
    with pytest.raises(ValueError, match="N=298 is more than the 297 train examples"):
        trainset.build(holes, 298, 0)


def test_variant_names_round_trip():
    assert study.variant(64) == "n64" and study.parse_variant("n64") == 64
    assert study.parse_variant("cot_after") is None and study.parse_variant("n64s2") is None
    run = runs.run_id("data_scaling", study.variant(64), "chain_sum", 2)
    assert runs.parse(run).variant == "n64" and S.run_cell(run, "student") == (64, 2)
    assert S.run_cell("student", "student") == (0, 0)
    with pytest.raises(ValueError, match="neither the student"):
        S.run_cell("data_scaling/n64s2/chain_sum/seed1", "student")  # not a size variant
    with pytest.raises(ValueError, match="neither the student"):
        S.run_cell("distillation/cot_after/chain_sum/seed0", "student")


# --- synthetic evaluations ------------------------------------------------------------------------


def eval_frame(run, task, mode, parse_ok, correct):
    n = len(correct)
    return pd.DataFrame(
        {
            "example_id": [f"{task}-{i}" for i in range(n)],
            "task": task,
            "run": run,
            "mode": mode,
            "prompt": "",
            "generation": "",
            "rationale": None,
            "parsed_answer": ["1" if ok else None for ok in parse_ok],
            "parse_ok": parse_ok,
            "answer": "1",
            "correct": correct,
            "prompt_tokens": 1,
            "generated_tokens": 1,
        }
    )


def evals(p_format, p_reasoning, sizes=SIZES, seeds=SEEDS, n=EXAMPLES, task="t1", rng=0):
    """Eval tables of every N x seed (both modes) and of the base student: each example is a
    format error with p_format(N), else a reasoning error with p_reasoning(N)."""
    rng = np.random.default_rng(rng)
    frames = []
    for size in sizes:
        for seed in seeds:
            run = runs.run_id("data_scaling", study.variant(size), task, seed)
            for mode in ("cot", "direct"):
                u = rng.random(n)
                fmt, wrong = p_format(size), p_reasoning(size)
                frames.append(eval_frame(run, task, mode, u >= fmt, u >= fmt + wrong))
    for mode in ("cot", "direct"):
        u = rng.random(n)
        frames.append(eval_frame("student", task, mode, u >= 0.6, u >= 0.98))
    return frames


def by_claim(rows):
    return {r["claim"]: r for r in rows}


def format_learned_by_128(size):
    return 0.5 * (16 / size) ** 2 if size < 128 else 0.0


def test_error_split_counts_format_and_reasoning_errors_apart():
    frame = eval_frame(
        "student", "t1", "cot", [True, True, False, False], [True, False, False, False]
    )
    split = S.error_split([frame], "student")
    assert split["kind"].tolist() == ["correct", "reasoning_error", "format_error", "format_error"]
    assert set(split["n"]) == {0}
    ev = evals(lambda n: 0.1, lambda n: 0.3, sizes=(16, 32, 64), seeds=(0, 1), n=50)
    split = S.error_split(ev, "student")
    assert len(split) == (3 * 2 + 1) * 2 * 50
    assert sorted(split["n"].unique()) == [0, 16, 32, 64]
    curve = S.curve_frame(split[split["mode"] == "cot"], "error")
    assert len(curve) == 3 * 2 * 50 and set(curve["error"]) <= {0.0, 1.0}
    assert (
        curve["error"].sum() == (split.query("mode == 'cot' and n > 0")["kind"] != "correct").sum()
    )
    shifted = [
        f.assign(example_id=f["example_id"] + "x") if i == 0 else f for i, f in enumerate(ev)
    ]
    with pytest.raises(ValueError, match="different test questions"):
        S.error_split(shifted, "student")


def test_a_known_exponent_is_supported_with_the_truth_in_its_interval():
    rows = S.claim_rows(evals(format_learned_by_128, lambda n: 2.0 * n**-0.4), "student",
                        resamples=1000, seed=0)  # fmt: skip
    pd.DataFrame(rows).pipe(tables.to_arrow, "claims")  # the rows fit the claims schema
    got = by_claim(rows)
    assert set(got) == {"power_law_exponent", "reasoning_keeps_improving"}
    assert set(got) == set(yaml.safe_load((ROOT / "resources/scorecard.yaml").read_text())
                           ["data_scaling"]["claims"])  # fmt: skip
    r = got["power_law_exponent"]
    assert r["verdict"] == "supported" and 0 < r["ci_low"] < r["effect"] < r["ci_high"], r
    assert r["study"] == "data_scaling" and r["task"] == "t1" and r["level"] == 0.95
    assert r["n_seeds"] == 3 and r["n"] == 3 * EXAMPLES and r["p_holm"] >= r["p_value"]
    assert "power law" in r["method"] and "bootstrap" in r["method"]
    assert "plateau" in r["reason"] and "N=256 from the smaller N" in r["reason"]
    assert r["models"] == "data_scaling/n{16,32,64,128,256}/t1/seed{0,1,2}"
    # reasoning: the format is learned from N=128 on, so only 2 sizes qualify
    assert got["reasoning_keeps_improving"]["verdict"] == "not_tested"
    assert "at 2 sizes only" in got["reasoning_keeps_improving"]["reason"]
    # with the format learned from N=32 on, reasoning's own fit decides (true b = 0.4)
    rows = S.claim_rows(evals(lambda n: 0.3 if n == 16 else 0.0, lambda n: 2.0 * n**-0.4),
                        "student", resamples=1000, seed=0)  # fmt: skip
    r = by_claim(rows)["reasoning_keeps_improving"]
    assert r["verdict"] == "supported" and r["ci_low"] <= 0.4 <= r["ci_high"], r
    assert "N = 32, 64, 128, 256" in r["method"]
    assert r["models"] == "data_scaling/n{32,64,128,256}/t1/seed{0,1,2}"
    # a pure power law (no format errors): both intervals hold the true exponent
    rows = S.claim_rows(evals(lambda n: 0.0, lambda n: 2.0 * n**-0.4, rng=1), "student")
    for r in rows:
        assert r["verdict"] == "supported" and r["ci_low"] <= 0.4 <= r["ci_high"], r


def test_flat_error_is_not_supported():
    rows = by_claim(S.claim_rows(evals(lambda n: 0.0, lambda n: 0.4, rng=5), "student",
                                 resamples=1000, seed=0))  # fmt: skip
    for claim in ("power_law_exponent", "reasoning_keeps_improving"):
        r = rows[claim]
        assert r["verdict"] != "supported" and r["ci_low"] <= 0 <= r["ci_high"], r


def test_too_few_sizes_or_examples_are_not_tested():
    rows = by_claim(S.claim_rows(evals(lambda n: 0.0, lambda n: 0.4, sizes=(16, 32)), "student"))
    assert {r["verdict"] for r in rows.values()} == {"not_tested"}
    assert "only 2 sizes" in rows["power_law_exponent"]["reason"]
    few = by_claim(S.claim_rows(evals(lambda n: 0.0, lambda n: 2 * n**-0.4, n=12), "student"))
    assert few["power_law_exponent"]["verdict"] == "not_tested"
    assert "only 12 examples" in few["power_law_exponent"]["reason"]
    other_mode = by_claim(S.claim_rows(evals(lambda n: 0.0, lambda n: 0.4), "student", "none"))
    assert "no none evaluation" in other_mode["power_law_exponent"]["reason"]


def test_summary_table_and_plot(tmp_path):
    ev = evals(format_learned_by_128, lambda n: 2.0 * n**-0.4)
    summary = S.summarize(ev, "student", resamples=300, seed=0)
    tables.write(summary, tmp_path / "s.parquet", "data_scaling")
    assert summary["mode"].drop_duplicates().tolist() == ["cot", "direct"]
    cot = summary[summary["mode"] == "cot"]
    assert cot["kind"].drop_duplicates().tolist() == list(S.CURVES)
    assert len(cot) == len(S.CURVES) * (len(SIZES) + 1)  # + the base student at N = 0
    base = cot[cot["n"] == 0].set_index("kind")
    assert base["seeds"].tolist() == [1, 1, 1] and base["b"].isna().all()
    err = cot[(cot["kind"] == "error") & (cot["n"] > 0)]
    assert (err["seeds"] == 3).all() and (err["examples"] == EXAMPLES).all()
    assert (err["ci_low"] <= err["rate"]).all() and (err["rate"] <= err["ci_high"]).all()
    assert (err["fit_low"] <= err["fit_rate"]).all() and (err["fit_rate"] <= err["fit_high"]).all()
    first = err.iloc[0]
    assert first["b_low"] < first["b"] < first["b_high"] and first["b_low"] > 0
    assert first["a_low"] < first["a"] < first["a_high"]
    assert first["offset_c_low"] <= first["offset_c"] <= first["offset_c_high"]
    assert first["aic_plateau"] > first["aic_power_law"] and first["best_model"] != "plateau"
    assert first["holdout_n"] == 256 and np.isfinite(first["holdout_abs_log_error"])
    # a kind's rates add up to the total error at every N
    wide = cot[cot["n"] > 0].pivot(index="n", columns="kind", values="rate")
    assert np.allclose(wide["format_error"] + wide["reasoning_error"], wide["error"])
    rows = S.claim_rows(ev, "student", resamples=300, seed=0)
    P.plot(summary, tmp_path / "p.png", rows)
    assert (tmp_path / "p.png").stat().st_size > 10_000


# --- the config check -----------------------------------------------------------------------------

BASE_CONFIG = {
    "tasks": {"t1": {"source": "embedded", "sizes": {"train": 100, "test": 20}}},
    "models": {"student": {"source": "hf"}},
    "finetune": {"epochs": 3, "max_steps": None},
    "studies": {
        "data_scaling": {
            "student": "student",
            "tasks": ["t1"],
            "sizes": [16, 32, 64],
            "seeds": [0, 1, 2],
            "schedule": "epochs",
        }
    },
}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("student", "nope", "studies.data_scaling.student: unknown model 'nope'"),
        ("tasks", ["t1", "t9"], r"studies.data_scaling.tasks\[1\]: unknown task 't9'"),
        (
            "sizes",
            [16, 32, 128],
            r"studies.data_scaling.sizes\[2\]: N=128 is larger than the "
            r"train split of 't1' \(tasks.t1.sizes.train = 100\)",
        ),
        ("sizes", [16, 32], r"studies.data_scaling.sizes: \[16, 32\] has 2 distinct sizes"),
        ("finetune", {"max_steps": 50}, r"studies.data_scaling.finetune.max_steps: 50 .*epochs"),
        ("schedule", "steps", r"studies.data_scaling.finetune.max_steps: schedule 'steps'"),
    ],
)
def test_config_problems_name_the_key_path(key, value, message):
    config = copy.deepcopy(BASE_CONFIG)
    assert study.check(config) == []  # the valid one passes
    config["studies"]["data_scaling"][key] = value
    (problem,) = study.check(config)
    assert re.search(message, problem), problem


def test_an_inherited_max_steps_is_named_and_steps_schedule_accepts_it():
    config = copy.deepcopy(BASE_CONFIG)
    config["finetune"]["max_steps"] = 4  # e.g. the smoke config's top-level finetune
    (problem,) = study.check(config)
    assert "from the `finetune:` defaults" in problem
    config["studies"]["data_scaling"]["schedule"] = "steps"
    assert study.check(config) == []
    config["studies"]["data_scaling"]["finetune"] = {"max_steps": None}
    assert "schedule 'steps'" in study.check(config)[0]


def test_an_empty_test_split_is_named():
    config = copy.deepcopy(BASE_CONFIG)
    config["tasks"]["t1"]["sizes"]["test"] = 0
    (problem,) = study.check(config)
    assert problem.startswith("tasks.t1.sizes.test: 0, but studies.data_scaling.tasks[0]")


@pytest.mark.parametrize("path", ["config.yaml", "tests/configs/smoke.yaml"])
def test_shipped_configs_pass_with_the_schema_defaults(path):
    config = yaml.safe_load((ROOT / path).read_text())
    checks = {
        s: __import__(f"ftlab.studies.{s}", fromlist=["check"]).check for s in studies.STUDIES
    }
    assert configcheck.problems(config, ROOT / "resources/config.schema.yaml", checks) == []
    section = config["studies"]["data_scaling"]
    assert section["schedule"] == "epochs" and section["mode"] == "cot"  # the paper's rule
    assert len(section["sizes"]) >= 3 and study.finetune_schedule(config)["max_steps"] is None
