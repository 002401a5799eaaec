"""The package as a user gets it: the wheel installed outside the checkout runs a recipe by name from an empty
folder without the optional extras; --version, the extras' one-line error, no shell completion offered."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT, run_cli

NO_EXTRAS = "import sys; sys.modules.update(dict.fromkeys(('wandb', 'optuna', 'submitit')))"  # import them: error


@pytest.mark.slow
def test_the_wheel_runs_a_recipe_by_name_from_an_empty_folder_without_the_extras(tmp_path, mnist_dir):
    src = tmp_path / "src"  # a copy: building in the checkout would leave build/ and *.egg-info there
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "dlmnist", src / "dlmnist", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", src], check=True)
    [wheel] = (tmp_path / "dist").glob("dlmnist-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "dlmnist/py.typed" in names and "dlmnist/configs/trainer/cpu_bf16.yaml" in names
    assert sum(n.endswith(".yaml") for n in names) == len(list((ROOT / "configs").rglob("*.yaml")))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    py = venv / "bin" / "python"
    subprocess.run([*pip, "--python", py, "install", "--no-deps", "--no-index", wheel], check=True)
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "zz_checkout_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch & co

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "DLMNIST_DATA": str(mnist_dir)}
    env.pop("PYTHONPATH", None)
    version = subprocess.run([venv / "bin" / "dlmnist", "--version"], cwd=empty, env=env, capture_output=True,
                             text=True, check=True).stdout
    assert version.startswith("dlmnist 0.1.0 (torch ") and "lightning" in version
    fit = f"{NO_EXTRAS}; import dlmnist; print(dlmnist.__file__); from dlmnist.entry import main; main()"
    out = subprocess.run([py, "-c", fit, "fit", "-c", "cnn", "--trainer.fast_dev_run=true"], cwd=empty, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith(site) and "val/acc" in out.stdout + out.stderr, out.stdout[-3000:]
    assert {p.name for p in empty.iterdir()} <= {"runs"}


def test_a_missing_extra_is_one_line_that_names_it(tmp_path):
    code = f"{NO_EXTRAS}; from dlmnist.entry import main; main(['tune', 'search/cnn'])"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == "dlmnist: error: dlmnist tune needs the [tune] extra: pip install 'dlmnist[tune]'\n"


def test_version_names_dlmnist_torch_and_lightning_without_importing_them():
    code = (
        "import sys\nfrom dlmnist.entry import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "print('HEAVY', sorted(m for m in ('torch', 'lightning') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    from importlib.metadata import version

    assert f"(torch {version('torch')}, lightning {version('lightning')}, python 3." in out.splitlines()[0]
    assert out.splitlines()[1] == "HEAVY []"


def test_no_shell_completion_is_offered(capsys):
    """jsonargparse offers completion only with shtab or argcomplete installed and turned on: dlmnist turns
    neither on and names none in its help; asking for it is an unknown option, refused in one line."""
    with pytest.raises(SystemExit):
        run_cli("--help")
    with pytest.raises(SystemExit):
        run_cli("fit", "--help")
    assert not {"shtab", "completion", "argcomplete"} & set(capsys.readouterr().out.replace("-", " ").split())
    with pytest.raises(SystemExit) as e:
        run_cli("fit", "--print_shtab=bash")
    assert e.value.code == 2 and "unrecognized arguments: --print_shtab" in capsys.readouterr().err
