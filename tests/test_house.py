"""The rules of the house, checked on the tree: one model base, no import cycles, Lightning's internals present,
configs that start from their family's base."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import lightning as L
import pytest
import yaml

import dlmnist.models as models
from dlmnist.config import dump, model_config
from dlmnist.models import Model, Optim

from .conftest import (
    ALL_CONFIGS,
    CONFIGS,
    EXPERIMENT_CONFIGS,
    NOT_SWEPT,
    OVERLAY_CONFIGS,
    ROOT,
    config_id,
    not_swept,
)

PACKAGE = ROOT / "dlmnist"


def import_graph(root: Path) -> dict[str, set[str]]:
    """part -> parts it imports, for every import statement anywhere in a file (function-level ones included).

    A part is a subpackage (``models``) or a top-level module (``cli``)."""
    graph: dict[str, set[str]] = {}
    for file in root.rglob("*.py"):
        rel = file.relative_to(root).with_suffix("").parts
        if rel[0] == "__init__":
            continue
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level:  # relative: resolve against the file's package
                base = list(rel[:-1])[: max(0, len(rel) - node.level)]
                names = [".".join(["dlmnist", *base, *([node.module] if node.module else [])])]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "dlmnist" and len(parts) > 1 and parts[1] != rel[0]:
                    graph.setdefault(rel[0], set()).add(parts[1])
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt, path + [nxt])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_no_import_cycle_between_the_parts_of_the_package():
    cycle = find_cycle(import_graph(PACKAGE))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle(tmp_path):
    pkg = tmp_path / "dlmnist"
    for part, imports in {"a": "from dlmnist.b import x", "b": "def f():\n    import dlmnist.a\n"}.items():
        (pkg / part).mkdir(parents=True)
        (pkg / part / "m.py").write_text(imports + "\n")
    assert find_cycle(import_graph(pkg)) == ["a", "b", "a"]


def test_utils_is_a_leaf():
    assert not import_graph(PACKAGE).get("utils"), "dlmnist.utils must import nothing else of dlmnist"


def test_every_model_builds_on_the_base():
    classes = [c for _, c in inspect.getmembers(models, inspect.isclass) if issubclass(c, L.LightningModule)]
    assert len(classes) >= 5 and all(issubclass(c, Model) for c in classes)
    for cls in classes:  # subclasses call their parents with keyword arguments only
        tree = ast.parse(inspect.getsource(cls))
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "__init__":
                assert not call.args, f"{cls.__name__}: {ast.unparse(call)} passes positional arguments"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": 0}, "optim.lr must be positive"),
        ({"weight_decay": -1}, "optim.weight_decay"),
        ({"name": "adagrad"}, "optim.name"),
        ({"schedule": "step"}, "optim.schedule"),
        ({"warmup": 1.0}, "optim.warmup"),
    ],
)
def test_bad_optim_values_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Optim(**kwargs)


def test_a_literal_argument_is_checked_by_the_one_helper():
    from typing import get_args

    from dlmnist.data.datamodule import Dataset
    from dlmnist.data.sources import DATASETS
    from dlmnist.models.autoencoder import LossName
    from dlmnist.utils.checks import check

    check(LossName, loss="mse")
    with pytest.raises(ValueError, match=r"^loss must be one of l1, mse, bce, got 'huber'$"):
        check(LossName, loss="huber")
    assert set(get_args(Dataset)) == set(DATASETS)  # the data module's choices are the data sets it knows


def test_optim_from_a_checkpoint_dict_keeps_the_model_default_for_missing_fields():
    assert Optim.of({"lr": 0.1}) == Optim(lr=0.1) and Optim.of(None) == Optim() and Optim.of(Optim(lr=2.0)).lr == 2.0


def test_every_yaml_under_configs_is_swept_or_listed_as_not_swept():
    """A new config file is an experiment or an overlay by its content (tests/conftest.py), so every config sweep
    takes it; a file that is neither must be listed in NOT_SWEPT with the test that covers it."""
    assert not set(EXPERIMENT_CONFIGS) & set(OVERLAY_CONFIGS)
    neither = [config_id(p) for p in ALL_CONFIGS if p not in EXPERIMENT_CONFIGS + OVERLAY_CONFIGS and not not_swept(p)]
    assert not neither, f"neither an experiment nor an overlay, and not in NOT_SWEPT: {neither}"
    stale = [name for name in NOT_SWEPT if not (CONFIGS / name).exists()]
    assert not stale, f"NOT_SWEPT names what configs/ does not have: {stale}"
    assert len(EXPERIMENT_CONFIGS) >= 40 and len(OVERLAY_CONFIGS) >= 5  # the discovery finds the known ones


def flat(tree: dict, prefix: str = "") -> dict[str, object]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists and empty dicts are leaves)."""
    out: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def interpolated(path: Path) -> set[str]:
    """Model keys whose value ``path`` or a config it starts from computes (``latent_dim: ${...z_dim}``)."""
    raw = yaml.safe_load(path.read_text()) or {}
    found = {k.removeprefix("model.") for k, v in flat(raw.get("model") or {}, "model.").items() if "${" in str(v)}
    found |= {k.removeprefix("model.") for k, v in raw.items() if k.startswith("model.") and "${" in str(v)}
    return found | (interpolated(path.parent / raw["config"]) if "config" in raw else set())


# Keys a variant restates at its base's value on purpose: the axis its study varies, named in every file of it
RESTATED = {
    "mlp_study/deep_relu": {"init_args.encoder.init_args.activation", "init_args.encoder.init_args.latent_activation"},
    "mlp_study/dropout_after": {"init_args.encoder.init_args.dropout_position"},  # dropout_before.yaml: before
}
VARIANTS = [p for p in EXPERIMENT_CONFIGS if "config" in (yaml.safe_load(p.read_text()) or {})]


def test_variant_configs_are_found():
    assert len(VARIANTS) >= 30 and (CONFIGS / "cnn_study" / "wide.yaml") in VARIANTS


@pytest.mark.parametrize("path", VARIANTS, ids=config_id)
def test_a_variant_config_resolves_to_its_base_except_the_keys_it_sets(path):
    """A config that starts from another (``config: ...``) sets single keys only, and its model resolves to its
    base's except at the keys it sets (and values computed from them): what it does not state, it inherits."""
    raw = yaml.safe_load(path.read_text())
    keys = [k for k in raw if k != "config"]
    assert all("." in k for k in keys), f"{path.name}: repeats a whole section of its base ({keys})"
    base = path.parent / raw["config"]
    ours, theirs = flat(model_config(path)), flat(model_config(base))
    derived = interpolated(base)
    differs = {k for k in ours.keys() | theirs.keys() if ours.get(k, "<unset>") != theirs.get(k, "<unset>")}
    differs = {k for k in differs if not k.endswith("__path__")}  # jsonargparse's mark of a module given as a file
    sets = {k.removeprefix("model.") for k in keys if k.startswith("model.")}

    def under(key: str, prefix: str) -> bool:
        return key == prefix or key.startswith(prefix + ".")

    unstated = sorted(k for k in differs - derived if not any(under(k, s) for s in sets))
    assert not unstated, f"differs from {raw['config']} at keys it does not set: {unstated}"
    same = {s for s in sets if not any(under(k, s) for k in differs)}
    assert same == RESTATED.get(config_id(path), set()), f"sets keys to {raw['config']}'s own values: {same}"


@pytest.mark.slow
def test_no_two_experiment_configs_resolve_to_the_same_run():
    """Two files for one run split its results in two: every experiment config resolves to a config of its own."""
    seen: dict[str, list[str]] = {}
    for path in EXPERIMENT_CONFIGS:
        seen.setdefault(dump(path), []).append(config_id(path))
    assert not [names for names in seen.values() if len(names) > 1]


def test_the_augmentation_is_written_once():
    """Every augmented recipe (and the suite's labels grid) names configs/augment/shift_rotate_scale.yaml."""
    ranges = re.compile(r"(^[ \t]*|[{,][ \t]*)(translate|rotate|scale):", re.MULTILINE)  # a key, not a comment
    spelled = [str(p.relative_to(CONFIGS)) for p in CONFIGS.rglob("*.yaml") if ranges.search(p.read_text())]
    assert spelled == ["augment/shift_rotate_scale.yaml"], "name that file in data.augment instead"
