"""`dlmnist suite --plan`: expected seconds from the ledger, the critical path, the wall time at --jobs."""

from __future__ import annotations

import json

import pytest
import yaml

from dlmnist.suite.graph import load_graph
from dlmnist.suite.plan import Progress, critical_path, expected, wall_time
from dlmnist.suite.runner import main as suite_main


def graph_and_ledger(tmp_path):
    graph = tmp_path / "suite.yaml"
    graph.write_text(yaml.safe_dump({"experiments": {
        "pre": {"config": "configs/ae_conv.yaml"},
        "cnn": {"config": "configs/cnn.yaml", "seeds": [1, 2]},
        "down": {"config": "configs/fewshot_transfer.yaml", "args": {"model.encoder_checkpoint": "{pre}/x"}},
        "other": {"config": "configs/cnn.yaml"},  # no record of its own: the record of the same config
        "new": {"config": "configs/vit.yaml"},  # nothing alike: the median of the others
        "anomaly": {"config": "configs/ae_anomaly.yaml"},  # builds on ae_conv.yaml: that config's record
    }}))
    def rec(experiment, seed, config, fit, test):
        return {"experiment": experiment, "seed": seed, "configs": [config], "fit_seconds": fit, "test_seconds": test,
                "machine": {"cpu": "AMD EPYC", "native_bf16": experiment == "cnn"}}

    records = [rec("pre", 42, "configs/ae_conv.yaml", 300, 20), rec("cnn", 1, "configs/cnn.yaml", 100, 10),
               rec("cnn", 1, "configs/cnn.yaml", 90, 10), rec("down", 42, "configs/fewshot_transfer.yaml", 50, 5)]
    ledger = tmp_path / "results" / "ledger.jsonl"
    ledger.parent.mkdir()
    ledger.write_text("".join(json.dumps(r) + "\n" for r in records))
    return load_graph(graph), records, graph


def test_the_plan_takes_each_runs_seconds_from_its_newest_record_or_a_like_one(tmp_path):
    graph, records, _ = graph_and_ledger(tmp_path)
    planned = {p.node.name: (p.seconds, p.source) for p in expected(graph.order(), records)}
    assert planned["cnn"] == (100, "record")  # the newest of seed 1
    assert planned["cnn_s2"] == (100, "same experiment")
    assert planned["other"] == (100, "same config")
    assert planned["pre"] == (320, "record") and planned["down"] == (55, "record")
    assert planned["anomaly"] == (pytest.approx(320 * 4 / 12), "base config")  # ae_conv.yaml's run: 4 of 12 epochs
    assert planned["new"] == (100, "guess")  # the median of 320, 100, 100, 55, 100, 106.7
    order = expected(graph.order(), records)
    assert critical_path(order) == (375, ["pre", "down"])
    assert wall_time(order, 1) == sum(p.seconds for p in order)
    assert wall_time(order, 1) == pytest.approx(320 + 3 * 100 + 55 + 100 + 320 * 4 / 12)
    assert 375 <= wall_time(order, 2) < wall_time(order, 1)


def test_a_record_from_this_kind_of_machine_wins_over_a_newer_one_from_another(tmp_path):
    graph, records, _ = graph_and_ledger(tmp_path)
    avx2 = {**records[1], "fit_seconds": 200, "machine": {"cpu": "AMD EPYC", "native_bf16": False}}
    records = [avx2, *records]  # older than the two native-bf16 records of cnn seed 1
    def cnn(kind):
        return {p.node.name: p.seconds for p in expected(graph.order(), records, kind)}["cnn"]
    assert cnn(None) == cnn(("AMD EPYC", True, None)) == 100  # the newest; this kind's newest
    assert cnn(("AMD EPYC", False, None)) == 210  # the older record, but made on this kind


def test_suite_plan_prints_every_run_and_the_totals_and_runs_nothing(tmp_path, capsys):
    _, _, graph = graph_and_ledger(tmp_path)
    assert suite_main(["--graph", str(graph), "--runs_dir", str(tmp_path / "runs"), "--plan", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "cnn_s2" in out and "0:01:40  same experiment" in out and "critical path 0:06:15: pre -> down" in out
    assert "7 runs (1 without a record" in out and "total run time" in out and "wall time at --jobs 2:" in out
    where = out.split("seconds measured on: ")[1]  # the records' machines: 3 runs each (the guess has none)
    assert "AMD EPYC, native bf16: 3 runs" in where and "AMD EPYC, no native bf16: 3 runs" in where
    assert not (tmp_path / "runs").exists()


def test_a_configs_bases_are_its_includes_followed_up_the_chain(tmp_path):
    from dlmnist.suite.plan import bases

    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text("trainer.max_epochs: 1\n")
    (tmp_path / "b.yaml").write_text("config: a.yaml\n")
    (tmp_path / "sub" / "c.yaml").write_text("config: [../b.yaml, other.yaml]\n")
    (tmp_path / "sub" / "d.yaml").write_text("config: missing.yaml\n")
    assert bases(str(tmp_path / "sub" / "c.yaml")) == [str(tmp_path / "b.yaml"), str(tmp_path / "a.yaml")]
    assert bases(str(tmp_path / "sub" / "d.yaml")) == [str(tmp_path / "sub" / "missing.yaml")]
    assert bases(str(tmp_path / "a.yaml")) == []
    he_init = bases("configs/mlp_study/deep_relu_he_init.yaml")  # a packaged recipe: deep_relu.yaml, then mlp.yaml
    assert he_init == ["configs/mlp_study/deep_relu.yaml", "configs/mlp.yaml"]


def test_the_epochs_that_scale_an_estimate_are_the_nearest_setting(tmp_path):
    from dlmnist.suite.plan import max_epochs

    (tmp_path / "a.yaml").write_text("trainer: {max_epochs: 12}\n")
    (tmp_path / "b.yaml").write_text("config: a.yaml\ntrainer.max_epochs: 4\n")
    (tmp_path / "c.yaml").write_text("config: b.yaml\nmodel.init_args.lr: 0.1\n")
    (tmp_path / "o.yaml").write_text("data.batch_size: 10\n")
    a, b, c, o = (str(tmp_path / f"{n}.yaml") for n in "abco")
    assert (max_epochs([a]), max_epochs([b]), max_epochs([c]), max_epochs([c, o])) == (12, 4, 4, 4)
    assert max_epochs([c], {"trainer.max_epochs": 2}) == 2 and max_epochs([o]) is None
    assert max_epochs(["configs/ae_anomaly.yaml"]) == 4 and max_epochs(["configs/ae_conv.yaml"]) == 12


def test_progress_counts_what_is_done_running_and_left():
    graph_names = ["a", "b", "c"]

    class P:
        def __init__(self, name, s):
            self.node = type("N", (), {"name": name})
            self.seconds = s

    progress = Progress([P(n, 60) for n in graph_names], jobs=1)
    assert progress.finished("a", running=1) == "[suite] 1 done, 1 running, 1 left; about 0:02:00 left"
