"""The results ledger: the suite adds one record per finished run, by hand `dlmnist ledger add`; the docs' blocks are
rendered from it and `dlmnist ledger check` notices any difference."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from dlmnist.ledger import record
from dlmnist.ledger.blocks import number
from dlmnist.ledger.command import main as ledger_main
from dlmnist.ledger.record import LedgerError, newest, read
from dlmnist.suite.runner import main as suite_main

from .conftest import ROOT

KEYS = {"experiment", "configs", "overrides", "config_sha256", "seed", "metrics", "fit_seconds", "test_seconds",
        "threads", "jobs", "versions", "machine", "started", "ended", "suite"}


@pytest.fixture
def suite_run(tmp_path, fake_data):
    """A full (not --quick) suite of one experiment with two seeds, on a few batches: its runs and its ledger."""
    graph = tmp_path / "suite.yaml"
    cnn = {"config": str(ROOT / "configs/cnn.yaml"), "seeds": [1, 2]}
    graph.write_text(yaml.safe_dump({"experiments": {"cnn": cnn}}))
    budget = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1",
              f"--data.data_dir={fake_data}", "--data.dataset=fashion_mnist"]  # the whole (fake, 100-image) test set
    argv = ["--graph", str(graph), "--runs_dir", str(tmp_path / "runs"), "--", *budget]
    assert suite_main(argv) == 0
    return tmp_path, argv


@pytest.mark.slow
def test_the_suite_adds_one_record_per_finished_run_and_never_replaces_one(suite_run, capsys):
    root, argv = suite_run
    ledger = root / "results" / "ledger.jsonl"  # beside runs/
    records = read(ledger)
    assert [(r["experiment"], r["seed"]) for r in records] == [("cnn", 1), ("cnn", 2)]
    for r in records:
        assert KEYS <= set(r) and r["metrics"]["test/acc"] >= 0
        assert r["configs"] == [str(ROOT / "configs/cnn.yaml")] and f"--seed_everything={r['seed']}" in r["overrides"]
        assert r["jobs"] == 1 and r["threads"] >= 1 and r["fit_seconds"] > 0 and r["test_seconds"] > 0
        assert r["suite"] == records[0]["suite"] and r["suite"].startswith("suite-")
        assert r["started"] <= r["ended"] and r["ended"].endswith("+00:00")
        assert set(r["versions"]) == {"dlmnist", "torch", "lightning"} and r["machine"]["cores"] >= 1
    assert records[0]["config_sha256"] != records[1]["config_sha256"]  # the seed is part of the config

    assert suite_main(argv) == 0  # up to date: nothing runs, nothing is recorded
    assert len(read(ledger)) == 2
    assert suite_main(["--force", "cnn", *argv]) == 0  # the same config and seed again: a second record
    again = read(ledger)
    assert len(again) == 3 and again[2]["suite"] != again[0]["suite"]
    assert again[2]["config_sha256"] == again[0]["config_sha256"]
    assert newest(again, "cnn")[1] is again[2]  # a table uses the newest

    run = root / "runs" / "cnn" / "version_0"
    capsys.readouterr()
    assert ledger_main(["--ledger", str(ledger), "diff", str(run)]) == 0
    out = capsys.readouterr().out  # compared with the other record of seed 1, made on this machine
    here = record.describe(record.machine())
    assert f"cnn seed 1 ({run}), same config, record of {again[2]['ended']} ({here}):" in out
    other = root / "other_threads.jsonl"  # the same machine, another thread count: said so
    other.write_text(json.dumps({**again[2], "threads": again[2]["threads"] + 1}) + "\n")
    assert ledger_main(["--ledger", str(other), "diff", str(run)]) == 0
    assert f"({here}; {again[2]['threads'] + 1} thread(s), this run {again[2]['threads']}:" in capsys.readouterr().out


@pytest.mark.slow
def test_ledger_add_by_hand_and_refuses_an_untested_run_in_one_line(suite_run, capsys):
    root, _ = suite_run
    ledger = root / "hand.jsonl"
    run = root / "runs" / "cnn_s2" / "version_0"
    assert ledger_main(["--ledger", str(ledger), "add", str(run)]) == 0
    [r] = read(ledger)
    assert r["experiment"] == "cnn" and r["seed"] == 2 and r["suite"] is not None  # the suite made the run
    untested = root / "runs" / "untested" / "version_0"
    shutil.copytree(run, untested)
    (untested / "test_metrics.json").unlink()
    capsys.readouterr()
    assert ledger_main(["--ledger", str(ledger), "add", str(run), str(untested)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no test metrics" in err and str(untested) in err
    assert len(read(ledger)) == 1  # all or nothing
    partial = root / "runs" / "partial" / "version_0"
    shutil.copytree(run, partial)
    (partial / "test_metrics.json").write_text(json.dumps({"test/acc": 0.5, "partial": True, "test_images": 10,
                                                           "test_images_total": 100}))
    assert ledger_main(["--ledger", str(ledger), "add", str(partial)]) == 2
    assert "tested on 10 of 100 test images" in capsys.readouterr().err


def test_render_writes_the_blocks_and_check_names_every_block_that_differs(tmp_path, capsys):
    ledger = tmp_path / "ledger.jsonl"
    rec = {"experiment": "cnn", "configs": ["configs/cnn.yaml"], "overrides": [], "ended": "2026-01-01T00:00:00+00:00"}
    lines = [{**rec, "seed": s, "metrics": {"test/acc": a}} for s, a in ((1, 0.99), (2, 0.98), (3, 0.97))]
    ledger.write_text("".join(json.dumps(x) + "\n" for x in lines))
    tables = tmp_path / "tables.yaml"
    tables.write_text(yaml.safe_dump({"cnns": {"rows": ["cnn", "vit"], "metrics": {"test acc": "test/acc"}},
                                      "cnn_acc": {"kind": "value", "experiment": "cnn", "metric": "test/acc"}}))
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("Accuracy <!-- ledger:cnn_acc -->0.5<!-- /ledger -->.\n")
    (tmp_path / "docs" / "models.md").write_text("# Models\n<!-- ledger:cnns -->\nold\n<!-- /ledger -->\nafter\n")
    args = ["--ledger", str(ledger), "--tables", str(tables), "--root", str(tmp_path)]

    assert ledger_main([*args, "check"]) == 1
    err = capsys.readouterr().err
    assert "README.md: ledger:cnn_acc" in err and "docs/models.md: ledger:cnns" in err
    assert ledger_main([*args, "render"]) == 0
    assert (tmp_path / "README.md").read_text() == "Accuracy <!-- ledger:cnn_acc -->0.9800 ± 0.0100<!-- /ledger -->.\n"
    page = (tmp_path / "docs" / "models.md").read_text()
    assert "| `cnn` | `configs/cnn.yaml` | 1, 2, 3 | 0.9800 ± 0.0100 (0.9700–0.9900) |" in page
    assert "| `vit` |  | - | no record |" in page and page.endswith("<!-- /ledger -->\nafter\n")
    assert ledger_main([*args, "check"]) == 0

    with ledger.open("a") as f:  # a newer run of seed 1: the tables follow it, the check notices
        f.write(json.dumps({**lines[0], "metrics": {"test/acc": 0.96}, "ended": "2026-02-01T00:00:00+00:00"}) + "\n")
    assert ledger_main([*args, "check"]) == 1
    assert ledger_main([*args, "render"]) == 0
    assert "0.9700 ± 0.0100" in (tmp_path / "README.md").read_text()

    (tmp_path / "README.md").write_text("<!-- ledger:nothing -->x<!-- /ledger -->\n")
    assert ledger_main([*args, "check"]) == 2
    assert "ledger:nothing has no spec" in capsys.readouterr().err


def test_numbers_show_the_spread_of_several_seeds():
    assert number([], 4) == "no record" and number([0.5], 3) == "0.500"
    assert number([0.9, 0.95, 1.0], 2, spread=True) == "0.95 ± 0.05 (0.90–1.00)"


def test_the_repositorys_generated_blocks_agree_with_its_ledger():
    assert ledger_main(["--root", str(ROOT), "--ledger", str(ROOT / "results/ledger.jsonl"),
                        "--tables", str(ROOT / "results/tables.yaml"), "check"]) == 0


def test_headline_machine_and_suites_blocks_give_verdicts_where_and_how_long():
    from dlmnist.ledger.blocks import headline, machine, suites

    base = {"experiment": "cnn", "configs": ["configs/cnn.yaml"], "overrides": [], "threads": 1, "jobs": 2,
            "machine": {"cpu": "AMD EPYC", "cores": 2, "gpu": None}, "suite": "s1", "test_seconds": 10.0,
            "versions": {"torch": "2.14.1", "lightning": "2.6"}}
    recs = [{**base, "seed": s, "metrics": {"test/acc": a}, "fit_seconds": 50.0 + s,
             "started": f"2026-01-01T00:0{s}:00+00:00", "ended": f"2026-01-01T00:0{s}:30+00:00"}
            for s, a in ((1, 0.994), (2, 0.992))]
    rows = [{"experiment": "cnn", "label": "CNN", "metric": "test/acc", "name": "acc", "target": ">= 0.9935"},
            {"experiment": "vit", "label": "ViT", "metric": "test/acc", "name": "acc", "target": ">= 0.99"}]
    text = headline({"rows": rows}, recs)
    row = "| CNN | `configs/cnn.yaml` | 1, 2 | acc **0.9930 ± 0.0014 (0.9920–0.9940)** | >= 0.9935 | misses | 52 s |"
    assert row in text
    assert "| ViT |  | - | acc **no record** | >= 0.99 | no record | - |" in text
    assert "meets" in headline({"rows": [{**rows[0], "target": ">= 0.993"}]}, recs)
    with pytest.raises(LedgerError, match="'>= NUMBER'"):
        headline({"rows": [{**rows[0], "target": "at least 0.99"}]}, recs)
    assert machine({"experiments": ["cnn"]}, recs) == (
        "AMD EPYC, no native bf16: 2 runs; 2 cores, GPU: none; 1 thread(s) a run, 2 run(s) at a time; "
        "torch 2.14.1, Lightning 2.6")
    assert machine({"experiments": ["vit"]}, recs) == "no record"
    assert "| `s1` | 2 | 2 | AMD EPYC, no native bf16 | 2 min 03 s | 1 min 30 s |" in suites({}, recs)
    recs[1]["machine"] = {**base["machine"], "native_bf16": True}  # one CPU name, two kinds: each counted
    assert machine({"experiments": ["cnn"]}, recs).startswith(
        "AMD EPYC, native bf16: 1 run; AMD EPYC, no native bf16: 1 run; 2 cores")


def test_a_rerun_is_compared_with_the_record_from_its_own_kind_of_machine_the_newest_of_it():
    from dlmnist.ledger.record import references

    def rec(bf16, ended, acc, seed=1, threads=1):
        return {"experiment": "cnn", "seed": seed, "threads": threads, "ended": ended, "metrics": {"test/acc": acc},
                "machine": {"cpu": "AMD EPYC", "cores": 2, "native_bf16": bf16, "gpu": None}}

    ledger = [rec(True, "2026-01-01", 0.9935), rec(True, "2026-01-02", 0.9936), rec(False, "2026-01-03", 0.9937),
              rec(True, "2026-01-04", 0.99, seed=2), rec(True, "2026-01-05", 0.98, threads=2)]
    now = rec(True, "2026-02-01", 0.9936)
    assert [r["metrics"]["test/acc"] for r in references(ledger, now)] == [0.9936, 0.98, 0.9937]  # own kind first
    assert [r["metrics"]["test/acc"] for r in references(ledger, {**now, "threads": 4})] == [0.98, 0.9936, 0.9937]
    assert [r["metrics"]["test/acc"] for r in references(ledger, {**now, "threads": None})] == [0.98, 0.9937]
    assert references(ledger, rec(True, "2026-02-01", 0.5, seed=3)) == []


def test_a_records_commit_is_dirty_for_changed_code_not_for_the_ledger_it_appends_to(tmp_path):
    import subprocess

    from dlmnist.ledger.record import checkout

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True, text=True).stdout

    assert checkout(tmp_path) == ""  # not a git checkout
    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "ledger.jsonl").write_text("")
    (tmp_path / "model.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    commit = git("rev-parse", "--short=12", "HEAD").strip()
    assert checkout(tmp_path) == f"+g{commit}"
    (tmp_path / "results" / "ledger.jsonl").write_text('{"experiment": "cnn"}\n')  # a suite appended a record
    (tmp_path / "notes.txt").write_text("untracked\n")
    assert checkout(tmp_path) == f"+g{commit}"
    (tmp_path / "model.py").write_text("x = 2\n")
    assert checkout(tmp_path) == f"+g{commit}.dirty"
