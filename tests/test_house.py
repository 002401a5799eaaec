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

from .conftest import CONFIGS, EXPERIMENT_CONFIGS, ROOT, config_id

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


def test_optim_from_a_checkpoint_dict_keeps_the_model_default_for_missing_fields():
    assert Optim.of({"lr": 0.1}) == Optim(lr=0.1) and Optim.of(None) == Optim() and Optim.of(Optim(lr=2.0)).lr == 2.0


def test_variant_configs_state_only_what_differs_from_their_base():
    """A config that starts from another (``config: ...``) sets single keys only; the study files start from cnn.yaml
    and resolve to it except for the keys they set."""
    variants = [p for p in EXPERIMENT_CONFIGS if "config" in (yaml.safe_load(p.read_text()) or {})]
    assert len(variants) >= 14
    for path in variants:
        keys = [k for k in yaml.safe_load(path.read_text()) if k != "config"]
        assert all("." in k for k in keys), f"{path.name}: repeats a whole section of its base ({keys})"
    base = model_config(CONFIGS / "cnn.yaml")
    for path in sorted((CONFIGS / "cnn_study").glob("*.yaml")):
        study = model_config(path)
        changed = {k.split(".")[-1] for k in yaml.safe_load(path.read_text()) if k != "config"}
        ours, theirs = study["init_args"]["encoder"]["init_args"], base["init_args"]["encoder"]["init_args"]
        differs = {k for k in theirs if theirs[k] != ours[k]}
        assert differs == changed, path.name
        assert {k: v for k, v in study["init_args"].items() if k != "encoder"} == {
            k: v for k, v in base["init_args"].items() if k != "encoder"
        }, path.name


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
