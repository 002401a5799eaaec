"""One resolver and one runs module: every reader resolves a config as ``--print_config`` does; no command leaves
an empty run folder behind; the suite hands a job its folder instead of predicting it."""

from __future__ import annotations

import re

import pytest
import yaml

from dlmnist import config, runs
from dlmnist.cli import RunFailed, call_cli

from .conftest import CONFIGS, run_cli


def printed(capsys, *args: str) -> dict:
    with pytest.raises(SystemExit):
        run_cli("fit", *args, "--print_config")
    return yaml.safe_load(capsys.readouterr().out)


def test_resolve_is_what_print_config_prints(capsys):
    args = ["-c", str(CONFIGS / "cnn_aug.yaml"), "--model.optim.lr=0.5", "--data.batch_size=64"]
    expected = printed(capsys, *args)
    assert yaml.safe_load(config.dump(overrides=args)) == expected
    resolved = config.resolve(CONFIGS / "cnn_aug.yaml", ["--model.optim.lr=0.5", "--data.batch_size=64"])
    assert resolved.model.init_args.optim.lr == 0.5 and resolved.data.batch_size == 64
    assert resolved.model.init_args.encoder.init_args.channels == [32, 64]  # cnn_aug.yaml over its include cnn.yaml
    assert config.model_config(CONFIGS / "cnn_aug.yaml") == expected["model"] | {
        "init_args": {**expected["model"]["init_args"], "optim": {**expected["model"]["init_args"]["optim"],
                                                                    "lr": 0.004}}}


def test_a_config_that_does_not_resolve_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  class_path: dlmnist.models.Classifier\n  init_args: {nope: 1}\n")
    with pytest.raises(ValueError, match="nope") as e:
        config.model_from_config(bad)
    assert "\n" not in str(e.value).strip()


def test_help_after_a_config_with_an_include_lists_the_resolved_model(capsys):
    with pytest.raises(SystemExit) as e:
        run_cli("fit", "-c", str(CONFIGS / "cnn_aug.yaml"), "--help")
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "model: dlmnist.models.Classifier, encoder: dlmnist.nn.ConvEncoder" in out
    assert re.search(r"--model\.encoder\.init_args\.channels .*?default: \[32, 64\]\)", out, re.DOTALL)


def test_summarize_takes_the_overrides_fit_takes(capsys):
    outs = []
    for extra in (["--model.head_hidden=[32]"], []):
        with pytest.raises(SystemExit) as e:
            run_cli("summarize", "-c", str(CONFIGS / "lenet5.yaml"), *extra)
        assert e.value.code == 0
        outs.append(capsys.readouterr().out)
    with_32, plain = outs
    assert "(120 + 1) * 32" in with_32 and "(120 + 1) * 32" not in plain


@pytest.mark.parametrize("extra", [["--trainer.fast_dev_run=true"], ["--trainer.accelerator=no_such_device"],
                                   ["--model.dropout=7"]])
def test_no_command_leaves_an_empty_run_folder(extra, mnist_dir, tmp_path):
    args = ["-c", str(CONFIGS / "mlp.yaml"), f"--data.data_dir={mnist_dir}", f"--runs_dir={tmp_path / 'runs'}"]
    try:
        run_cli("fit", *args, *extra)
    except SystemExit as e:
        assert e.code != 0 and "fast_dev_run" not in extra[0]
    assert not (tmp_path / "runs").exists()


def test_a_fit_writes_into_the_folder_it_is_given_and_refuses_a_used_one(mnist_dir, tmp_path):
    given = tmp_path / "runs" / "mlp" / "version_7"
    args = ["fit", "-c", str(CONFIGS / "mlp.yaml"), f"--data.data_dir={mnist_dir}", f"--runs_dir={tmp_path / 'runs'}",
            "--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1",
            "--trainer.enable_progress_bar=false"]
    runs.claim(given)
    with runs.use_folder(given):
        cli, _ = call_cli(args)
    assert cli.run_dir == given and (given / "config.yaml").is_file() and runs.versions(given.parent) == [given]
    with runs.use_folder(given), pytest.raises(RunFailed):
        call_cli(args)  # not empty: refused, and left as it was
    assert (given / "config.yaml").is_file()
