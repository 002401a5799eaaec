"""The experiment suite: the graph, running it for real (quick budgets, fake data), reuse, reruns, the report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch.nn as nn
import yaml
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException

from dlmnist.analysis.walk import spatial_receptive_field, summarize_module
from dlmnist.cli import call_cli
from dlmnist.report.build import main as report_main
from dlmnist.suite.graph import GraphError, load_graph
from dlmnist.suite.runner import main as suite_main

from .conftest import CONFIGS, EXPERIMENT_CONFIGS, ROOT

SUITE = CONFIGS / "suite.yaml"


def write_graph(path: Path, experiments: dict, report: list | None = None) -> Path:
    graph = {"experiments": experiments, "quick": {"trainer.max_epochs": 1, "trainer.limit_train_batches": 2}}
    graph["quick"].update({"trainer.limit_val_batches": 1, "trainer.limit_test_batches": 1})
    graph["quick"].update({"trainer.enable_progress_bar": False, "trainer.log_every_n_steps": 1})
    path.write_text(yaml.safe_dump({**graph, "report": report or []}))
    return path


def test_every_experiment_config_is_in_the_suite():
    graph = load_graph(SUITE)
    used = {(ROOT / c).resolve() for node in graph.nodes.values() for c in node.config}
    for path in list(used):  # a config the suite runs through another's `config:` include is run too
        while isinstance(base := (yaml.safe_load(path.read_text()) or {}).get("config"), str):
            path = (path.parent / base).resolve()
            used.add(path)
    missing = [str(p.relative_to(ROOT)) for p in EXPERIMENT_CONFIGS if p.resolve() not in used]
    assert not missing, f"add an entry to configs/suite.yaml for {missing}"
    for node in graph.nodes.values():
        assert all((ROOT / c).is_file() for c in node.config), node.name


def test_no_two_experiments_of_the_suite_train_the_same_run():
    """Two entries with the same config files and arguments (seed included) cost a second training and split one
    result over two names: a study that needs a recipe another entry runs names that entry instead."""
    seen: dict[tuple, list[str]] = {}
    for node in load_graph(SUITE).nodes.values():
        files = tuple(str((ROOT / c).resolve()) for c in node.config)
        seen.setdefault((files, yaml.safe_dump(node.args, sort_keys=True)), []).append(node.name)
    assert not [names for names in seen.values() if len(names) > 1]


def test_graph_orders_by_references_and_substitutes_run_folders(tmp_path):
    g = write_graph(
        tmp_path / "g.yaml",
        {
            "transfer": {"config": "b.yaml", "args": {"model.encoder_checkpoint": "{ae}/checkpoints/best.ckpt"}},
            "ae": {"config": "a.yaml", "needs": ["base"], "test": "last"},
            "base": {"config": ["a.yaml", "o.yaml"], "quick": {"trainer.max_epochs": 2}},
        },
    )
    graph = load_graph(g)
    assert [n.name for n in graph.order()] == ["base", "ae", "transfer"]
    assert [n.name for n in graph.order(["ae"])] == ["base", "ae"]
    args = graph.nodes["transfer"].fit_args({"ae": Path("/r/ae/version_3")}, None)
    assert args == [
        "-c",
        "b.yaml",
        "--name=transfer",
        "--model.encoder_checkpoint=/r/ae/version_3/checkpoints/best.ckpt",
    ]
    quick = graph.nodes["base"].fit_args({}, graph.quick)
    assert quick[:4] == ["-c", "a.yaml", "-c", "o.yaml"] and quick[-1] == "--trainer.max_epochs=2"  # node wins
    assert "--trainer.enable_progress_bar=false" in quick


@pytest.mark.parametrize(
    "experiments, message",
    [
        ({"a": {"config": "a.yaml", "args": {"x": "{b}"}}, "b": {"config": "b.yaml", "needs": ["a"]}}, "cycle"),
        ({"a": {"config": "a.yaml", "args": {"x": "{nope}/best.ckpt"}}}, "unknown experiment 'nope'"),
        ({"a": {"cfg": "a.yaml"}}, "needs `config`"),
        ({"a": {"config": "a.yaml", "test": "worst"}}, "test must be"),
        ({"a": {"config": "a.yaml", "vary": {"x": [1, 2]}}}, "vary must be"),
        ({"a": {"config": "a.yaml", "vary": {"x": {"1": 1}, "y": {"1": 1}}}}, "vary must be"),
        ({"a": {"config": "a.yaml", "vary": {"x": {"b": 1}}}, "a_b": {"config": "b.yaml"}}, "already exists"),
    ],
)
def test_bad_graphs_are_refused_naming_the_problem(experiments, message, tmp_path):
    with pytest.raises(GraphError, match=message):
        load_graph(write_graph(tmp_path / "g.yaml", experiments))


def rf_of(module: nn.Module, shape=(1, 28, 28)):
    return spatial_receptive_field(summarize_module(module, shape))


def test_receptive_field_of_known_stacks():
    # conv 5 -> pool 2 -> conv 3 -> pool 2 (configs/cnn.yaml): r = 5, 5 + 1*1 = 6, 6 + 2*2 = 10, 10 + 1*2 = 12
    stack = nn.Sequential(nn.Conv2d(1, 2, 5), nn.MaxPool2d(2), nn.Conv2d(2, 2, 3), nn.MaxPool2d(2))
    assert rf_of(stack) == ("12x12", "4")
    dilated = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2), nn.Conv2d(1, 1, 3, dilation=2))  # 3, then 3 + 2*2*2
    assert rf_of(dilated) == ("11x11", "2")
    # the field stops at the first layer that mixes every position
    assert rf_of(nn.Sequential(stack, nn.Flatten(), nn.Linear(2 * 5 * 5, 3), nn.ReLU())) == ("12x12", "4")
    assert rf_of(nn.Linear(3, 3), (3,)) is None


def test_report_column_is_the_summarize_walk_of_the_experiment_model(tmp_path):
    from types import SimpleNamespace

    from dlmnist.config import model_from_config
    from dlmnist.report.tables import receptive_field

    model = model_from_config(ROOT / "configs" / "cnn.yaml")
    assert receptive_field(SimpleNamespace(model=model)) == "12x12 px"  # the table printed by dlmnist summarize


@pytest.mark.slow
def test_suite_runs_reuses_reruns_what_changed_and_reports(fake_data, tmp_path, capsys):
    cnn, lenet = str(CONFIGS / "cnn.yaml"), str(CONFIGS / "lenet5.yaml")
    report = [
        {"title": "Pair", "experiments": ["first", "second", "absent"], "side_by_side": True},
        {"title": "Nothing here", "experiments": ["vit*"]},
    ]
    graph = write_graph(
        tmp_path / "g.yaml", {"first": {"config": cnn}, "second": {"config": lenet, "needs": ["first"]}}, report
    )
    runs = tmp_path / "runs"
    data = ["--", f"--data.data_dir={fake_data}", "--data.dataset=fashion_mnist", "--data.batch_size=64"]
    argv = ["--graph", str(graph), "--quick", "--runs_dir", str(runs), *data]

    assert suite_main(argv) == 0
    for name in ("first", "second"):
        record = json.loads((runs / name / "version_0" / "suite.json").read_text())
        assert (
            record["status"] == "done"
            and record["fit_seconds"] > 0
            and "--trainer.limit_train_batches=2" in record["fit_command"]
        )
        assert (runs / name / "version_0" / "test_metrics.json").is_file()

    assert suite_main(argv) == 0  # nothing changed: nothing runs
    assert not (runs / "first" / "version_1").exists() and not (runs / "second" / "version_1").exists()

    g = yaml.safe_load(graph.read_text())
    g["experiments"]["first"]["args"] = {"model.optim.lr": 0.001}
    graph.write_text(yaml.safe_dump(g))
    assert suite_main(argv) == 0  # `first` changed, so it and what needs it run again
    assert (runs / "first" / "version_1" / "suite.json").is_file() and (runs / "second" / "version_1").is_dir()
    record = json.loads((runs / "first" / "version_1" / "suite.json").read_text())
    assert "--model.optim.lr=0.001" in record["fit_command"]

    out = tmp_path / "reports"
    assert report_main(["--runs_dir", str(runs), "--out", str(out), "--graph", str(graph)]) == 0
    text = (out / "README.md").read_text()
    acc = json.loads((runs / "first" / "version_1" / "test_metrics.json").read_text())["test/acc"]
    assert f"{acc:.4g}" in text  # the number comes from the run folder
    assert re.search(r"\| absent \| not run", text) and "## Nothing here\n\n_not run_" in text
    pngs = re.findall(r"\]\((figures/[^)]+\.png)\)", text)
    assert len(pngs) >= 4 and all((out / p).is_file() for p in pngs)
    assert "figures/first/curves.png" in pngs and "figures/second/test__confusion_matrix.png" in pngs
    assert len(pngs) == len(set(pngs)), "a figure shown twice (the fit's own curves.png and the report's)"


def test_a_run_stopped_by_sigterm_is_not_taken_for_a_finished_one(fake_data, tmp_path):
    class Sigterm(Callback):  # what Lightning's SIGTERM handler does, without sending a signal to pytest
        def on_train_batch_end(self, trainer, *args):
            trainer._signal_connector.received_sigterm = True

    args = ["fit", "-c", str(CONFIGS / "cnn.yaml"), f"--runs_dir={tmp_path}", f"--data.data_dir={fake_data}"]
    args += ["--data.dataset=fashion_mnist", "--trainer.max_epochs=2", "--trainer.enable_progress_bar=false"]
    with pytest.raises(SIGTERMException):  # a SystemExit with no code: it must stop the suite, not count as done
        call_cli(args, callbacks=[Sigterm()])


def test_section_table_mixes_models_with_and_without_a_monitor(tmp_path):
    from dlmnist.report.tables import Experiment, section_table

    def model(monitor):
        m = nn.Linear(2, 2)
        m.monitor = monitor
        return m

    clf = Experiment("clf", tmp_path, test={"test/acc": 0.99}, metrics={"val/acc": [(0, 0, 0.5), (1, 1, 0.9)]})
    clf.model = model(("val/acc", "max"))
    sae = Experiment("sae", tmp_path, test={"test/acc": 0.98}, model=model((None, "max")))
    head, _, row_clf, row_sae = section_table([clf, sae], {}, [])
    assert "best val/acc" in head and "None" not in head
    assert "| 0.9 |" in row_clf and row_sae.count("—") >= 1


def test_seeds_make_one_experiment_per_seed_and_follow_seeded_references(tmp_path):
    graph = tmp_path / "suite.yaml"
    graph.write_text(yaml.safe_dump({"experiments": {
        "pre": {"config": "configs/ae_conv.yaml", "seeds": [1, 2]},
        "post": {"config": "configs/fewshot_transfer.yaml", "args": {"model.encoder_checkpoint": "{pre}/x.ckpt"},
                 "seeds": [1, 2, 3]},
        "plain": {"config": "configs/cnn.yaml"},
    }}, sort_keys=False))
    g = load_graph(graph)
    assert list(g.nodes) == ["pre", "pre_s2", "post", "post_s2", "post_s3", "plain"]
    assert g.families == {"pre": ["pre", "pre_s2"], "post": ["post", "post_s2", "post_s3"]}
    assert g.nodes["post_s2"].args == {"model.encoder_checkpoint": "{pre_s2}/x.ckpt", "seed_everything": 2,
                                       "data.seed": 2}
    assert g.nodes["post"].deps == ["pre"] and g.nodes["post_s3"].deps == ["pre"]  # pre has no seed 3: its first
    assert [n.name for n in g.order(["post_s2"])] == ["pre_s2", "post_s2"]
    graph.write_text(yaml.safe_dump({"experiments": {"x": {"config": "configs/cnn.yaml", "seeds": "1"}}}))
    with pytest.raises(GraphError, match="seeds must be a list of integers"):
        load_graph(graph)


def test_vary_makes_one_experiment_per_value_of_one_key(tmp_path):
    graph = tmp_path / "suite.yaml"
    graph.write_text(yaml.safe_dump({"experiments": {
        "held_out": {"config": "configs/ae_anomaly.yaml", "args": {"trainer.max_epochs": 2}, "test": "last",
                     "seeds": [1, 2], "vary": {"data.exclude_classes": {"d0": [0], "d1": [1]}}},
        "after": {"config": "configs/cnn.yaml", "args": {"x": "{held_out_d1}/best.ckpt"}},
    }}, sort_keys=False))  # fmt: skip
    g = load_graph(graph)
    assert list(g.nodes) == ["held_out_d0", "held_out_d0_s2", "held_out_d1", "held_out_d1_s2", "after"]
    assert g.nodes["held_out_d1_s2"].args == {"trainer.max_epochs": 2, "data.exclude_classes": [1],
                                              "seed_everything": 2, "data.seed": 2}  # fmt: skip
    assert g.nodes["held_out_d0"].test == "last" and g.nodes["after"].deps == ["held_out_d1"]
    assert g.families["held_out_d0"] == ["held_out_d0", "held_out_d0_s2"]
    assert len(load_graph(graph, quick=True).nodes) == 3

    suite = load_graph(SUITE)  # the leave-one-digit-out study: one entry, ten experiments, as the CLI reads them
    assert "ae_anomaly" not in suite.nodes
    for d in range(10):
        assert suite.nodes[f"ae_anomaly_d{d}"].fit_args({}, None) == [
            "-c", "configs/ae_anomaly.yaml", f"--name=ae_anomaly_d{d}", f"--data.exclude_classes=[{d}]"]  # fmt: skip


def test_the_report_shows_the_seeds_of_an_experiment_as_mean_and_standard_deviation(tmp_path):
    from dlmnist.report.tables import Experiment, section_table

    seeds = [Experiment(f"cnn{s}", tmp_path, test={"test/acc": a}) for s, a in (("", 0.990), ("_s2", 0.992),
                                                                              ("_s3", 0.994))]
    single = Experiment("lenet5", tmp_path, test={"test/acc": 0.989})
    head, _, row_seeds, row_single = section_table([seeds, single], {}, [])
    assert "| 3 seeds |" in row_seeds and "| 0.992 ± 0.002 |" in row_seeds  # sample std of 0.990, 0.992, 0.994
    assert "| 1 run |" in row_single and "| 0.989 |" in row_single and "±" not in row_single


def test_a_grid_is_declared_once_and_reported_as_one_table_and_figure(tmp_path):
    from dlmnist.report.build import Report

    graph = tmp_path / "suite.yaml"
    graph.write_text(yaml.safe_dump({
        "experiments": {"pre": {"config": "configs/ae_conv.yaml", "seeds": [1, 2]}},
        "grids": {"labels": {"seeds": [1, 2], "rows": {
            "scratch": {"config": "configs/fewshot_scratch.yaml"},
            "pretrained": {"config": "configs/fewshot_transfer.yaml", "args": {"model.encoder_checkpoint": "{pre}/x"}},
        }, "columns": {"100": None, "all": "configs/labels/all.yaml"}}},
        "report": [{"title": "Labels", "grid": "labels", "metric": "test/acc"}],
    }, sort_keys=False))
    g = load_graph(graph)
    assert g.grids == {"labels": {"scratch": {"100": "labels_scratch_100", "all": "labels_scratch_all"},
                                  "pretrained": {"100": "labels_pretrained_100", "all": "labels_pretrained_all"}}}
    assert g.nodes["labels_pretrained_100_s2"].args["model.encoder_checkpoint"] == "{pre_s2}/x"
    assert g.nodes["labels_pretrained_all"].config == ["configs/fewshot_transfer.yaml", "configs/labels/all.yaml"]
    assert g.nodes["labels_pretrained_100"].config == ["configs/fewshot_transfer.yaml"]  # the recipe as it is
    assert g.nodes["labels_pretrained_100_s2"].experiment == "labels_pretrained_100"  # the seeds' experiment
    assert len(load_graph(graph, quick=True).nodes) == 5  # the first seed of everything

    runs = tmp_path / "runs"
    for name, acc, subset in (("labels_scratch_100", 0.80, 100), ("labels_scratch_100_s2", 0.84, 100),
                              ("labels_scratch_all", 0.99, None)):
        run = runs / name / "version_0"
        run.mkdir(parents=True)
        (run / "metrics.csv").write_text("epoch,step,val/acc\n0,0,0.5\n")
        (run / "test_metrics.json").write_text(json.dumps({"test/acc": acc}))
        (run / "config.yaml").write_text(yaml.safe_dump({"data": {"train_subset": subset, "val_fraction": 0.2}}))
    text = Report(runs, tmp_path / "reports").write(graph).read_text()
    table = text[text.index("## Labels") :]
    assert "| scratch | 0.82 ± 0.028 (n=2) | 0.99 (n=1) |" in table and "| pretrained | not run | not run |" in table
    assert (tmp_path / "reports" / "figures" / "labels" / "label_efficiency.png").stat().st_size > 1000
    raw = yaml.safe_load(graph.read_text())
    raw["grids"]["labels"]["columns"]["all"] = {"data.train_subset": None}  # a hidden override, not a file
    graph.write_text(yaml.safe_dump(raw))
    with pytest.raises(GraphError, match="column 'all': a config file or null"):
        load_graph(graph)


def test_suite_arguments_are_written_as_the_cli_reads_them():
    from dlmnist.suite.graph import as_args

    assert as_args({"data.train_subset": None, "model.pretrain": False, "x.ys": [1, 2], "data.augment": {"a": 2}}) == [
        "--data.train_subset=null", "--model.pretrain=false", "--x.ys=[1, 2]", "--data.augment={a: 2}"]


def test_a_partial_test_is_shown_as_partial(tmp_path):
    from dlmnist.report.tables import Experiment, partial, section_table

    test = {"test/acc": 0.9, "partial": True, "test_images": 2000, "test_images_total": 10000}
    e = Experiment("cnn", tmp_path, test=test, metrics={"val/acc": [(0, 0, 0.5)]})
    e.model = nn.Linear(2, 2)
    e.model.monitor = ("val/acc", "max")
    assert partial(e) == "partial test: 2000 of 10000 test images"
    head, _, row = section_table([e], {}, [])
    assert "| cnn (partial test) |" in row and "| 0.9 |" in row
    assert "partial" not in head and "test_images" not in head  # marks, not metrics
