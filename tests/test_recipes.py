"""Packaged recipes by name (dlmnist.recipes): -c cnn anywhere, a path that exists wins, `dlmnist configs`."""

from __future__ import annotations

import pytest
import yaml

from dlmnist import recipes
from dlmnist.argv import with_recipe_paths
from dlmnist.config import dump
from dlmnist.suite.graph import load_graph
from dlmnist.tune.spec import load_spec

from .conftest import ALL_CONFIGS, CONFIGS, run_cli


def test_the_checkout_configs_are_the_packaged_recipes():
    assert CONFIGS.resolve() == recipes.PACKAGED
    assert len(recipes.names()) == len(ALL_CONFIGS) >= 30


@pytest.mark.parametrize("name", recipes.names())
def test_every_recipe_opens_with_a_description(name):
    assert recipes.description(recipes.PACKAGED / f"{name}.yaml"), f"{name}.yaml has no opening comment line"


def test_a_name_finds_the_packaged_recipe_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cnn = str(recipes.PACKAGED / "cnn.yaml")
    assert recipes.path("cnn") == recipes.path("cnn.yaml") == recipes.path("configs/cnn.yaml") == cnn
    assert recipes.path("trainer/cpu_bf16") == str(recipes.PACKAGED / "trainer" / "cpu_bf16.yaml")
    assert recipes.path("nope") == "nope" and not recipes.exists("nope")
    assert recipes.path("../recipes.py") == "../recipes.py"  # no way out of the recipe folder
    argv = ["fit", "-c", "cnn", "--config=trainer/cpu_bf16", "--trainer.max_epochs=1"]
    assert with_recipe_paths(argv) == ["fit", "-c", cnn, f"--config={recipes.PACKAGED}/trainer/cpu_bf16.yaml",
                                       "--trainer.max_epochs=1"]


def test_a_path_that_exists_wins_over_a_recipe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cnn").write_text("trainer:\n  max_epochs: 3\n")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "cnn.yaml").write_text("trainer:\n  max_epochs: 4\n")
    assert recipes.path("cnn") == "cnn"
    assert recipes.path("configs/cnn.yaml") == "configs/cnn.yaml"
    assert recipes.path("cnn.yaml") == str(recipes.PACKAGED / "cnn.yaml")


def test_recipes_compose_by_name_as_by_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    by_name = yaml.safe_load(dump(["cnn", "trainer/cpu_bf16"]))
    by_path = yaml.safe_load(dump([CONFIGS / "cnn.yaml", CONFIGS / "trainer" / "cpu_bf16.yaml"]))
    assert by_name == by_path and by_name["trainer"]["precision"] == "bf16-mixed"


def test_suite_graph_and_search_spec_are_found_from_the_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "cnn" in load_graph("configs/suite.yaml").nodes  # the suite's default --graph, outside the checkout
    assert load_spec("search/cnn").config  # dlmnist tune search/cnn


def test_configs_lists_and_shows_the_recipes(capsys):
    with pytest.raises(SystemExit) as e:
        run_cli("configs")
    lines = capsys.readouterr().out.splitlines()
    assert e.value.code == 0 and len(lines) == len(recipes.names())
    cnn = next(line for line in lines if line.split()[0] == "cnn")
    assert "CNN" in cnn and any(line.startswith("trainer/cpu_bf16 ") for line in lines)
    with pytest.raises(SystemExit) as e:
        run_cli("configs", "show", "cnn")
    assert e.value.code == 0 and capsys.readouterr().out == (CONFIGS / "cnn.yaml").read_text()


UNKNOWN = [
    (("configs", "show", "cnnn"), "cnnn", "cnn"),
    (("fit", "-c", "cnnn"), "cnnn", "cnn"),
    (("test", "--config=trainer/cpu_bf61"), "trainer/cpu_bf61", "trainer/cpu_bf16"),
    (("summarize", "-c", "lenet"), "lenet", "lenet5"),
    (("tune", "serch/cnn"), "serch/cnn", "search/cnn"),
    (("suite", "--graph", "configs/suit.yaml", "--dry_run"), "configs/suit.yaml", "suite"),
]


@pytest.mark.parametrize("argv, name, close", UNKNOWN, ids=[a[0] for a, _, _ in UNKNOWN])
def test_an_unknown_name_is_one_line_with_the_close_match(argv, name, close, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        run_cli(*argv)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert e.value.code == 2 and f"config '{name}'" in err and f"did you mean '{close}'?" in err, err


def test_the_resolver_refuses_an_unknown_name_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="config 'cnnn' is neither a file nor a packaged recipe; did you mean 'cnn'"):
        dump("cnnn")
