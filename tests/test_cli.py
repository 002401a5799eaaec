"""The real CLI and Trainer: every config with fast_dev_run, the run folder layout, errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch
import yaml

from .conftest import CONFIGS, OVERLAY_CONFIGS, ROOT, config_id, run_cli


def overlay_trainer(overlay) -> dict:
    return (yaml.safe_load(overlay.read_text()) or {}).get("trainer") or {}


def starts_several_processes(overlay) -> bool:
    trainer = overlay_trainer(overlay)
    devices, strategy = trainer.get("devices"), str(trainer.get("strategy") or "")
    return (isinstance(devices, int) and devices > 1) or "ddp" in strategy.lower() or "DDP" in strategy


def needs_gpu(overlay) -> bool:
    """An overlay that asks for an accelerator other than the CPU (read from the file: a new one is found too)."""
    return str(overlay_trainer(overlay).get("accelerator", "cpu")).lower() not in ("cpu", "auto")


@pytest.mark.parametrize("overlay", OVERLAY_CONFIGS, ids=config_id)
def test_every_overlay_composes_with_the_main_config(overlay, mnist_dir, fake_data, tmp_path, monkeypatch, capsys):
    args = ["-c", str(CONFIGS / "cnn.yaml"), "-c", str(overlay)]
    # an overlay switching to another data set (Fashion-MNIST) runs on the small fake set of that name
    dataset = ((yaml.safe_load(overlay.read_text()) or {}).get("data") or {}).get("dataset", "mnist")
    args += [f"--data.data_dir={mnist_dir if dataset == 'mnist' else fake_data}", f"--runs_dir={tmp_path}"]
    several = starts_several_processes(overlay)  # these start processes of their own: tests/test_ddp.py runs one
    if several or (needs_gpu(overlay) and not torch.cuda.is_available()):
        with pytest.raises(SystemExit) as e:  # no GPU here / not in-process: check that it parses and resolves
            run_cli("fit", *args, "--print_config")
        assert e.value.code == 0
        trainer = yaml.safe_load(capsys.readouterr().out)["trainer"]
        for key, value in (yaml.safe_load(overlay.read_text())["trainer"]).items():
            if not isinstance(value, dict):
                assert trainer[key] == value, key
        return
    monkeypatch.setenv("WANDB_MODE", "offline")
    run_cli("fit", *args, "--trainer.max_steps=2", "--trainer.limit_val_batches=1")
    run = tmp_path / "cnn" / "version_0"
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 2  # it trained
    saved = yaml.safe_load((run / "config.yaml").read_text())  # and ran with the overlay's settings
    for section, values in (yaml.safe_load(overlay.read_text()) or {}).items():
        for key, value in values.items() if isinstance(values, dict) else ():
            # a class (logger, strategy) is saved with all its defaults; bf16 may fall back (test_bf16_overlay_...)
            nested = isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, dict) for v in value))
            if not nested and not (section == "trainer" and key == "precision"):
                assert saved[section][key] == value, f"{section}.{key}"


def test_the_data_seed_follows_the_run_seed_unless_given(mnist_dir, tmp_path):
    """--seed_everything=N alone seeds the split, subsets and shuffling too (config.yaml says data.seed: N), so a
    ledger record made with --seed_everything=N --data.seed=N is rerun by --seed_everything=N; a given data.seed
    stays; in Python the default is 42."""
    from dlmnist.data import MNISTDataModule

    common = ["-c", str(CONFIGS / "cnn.yaml"), f"--data.data_dir={mnist_dir}", f"--runs_dir={tmp_path}",
              "--trainer.max_steps=1", "--trainer.limit_val_batches=1"]
    run_cli("fit", *common, "--seed_everything=3", "--name=a")
    run_cli("fit", *common, "--seed_everything=3", "--data.seed=5", "--name=b")
    seeds = [yaml.safe_load((tmp_path / n / "version_0" / "config.yaml").read_text())["data"]["seed"] for n in "ab"]
    assert seeds == [3, 5]
    assert MNISTDataModule(data_dir=str(mnist_dir)).hparams.seed == 42


def test_run_folder_layout_test_metrics_and_no_overwrite(mnist_dir, tmp_path):
    common = ["-c", str(CONFIGS / "cnn.yaml"), f"--data.data_dir={mnist_dir}", f"--runs_dir={tmp_path}"]
    short = [
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=3",
        "--trainer.limit_val_batches=2",
        "--trainer.log_every_n_steps=1",
    ]
    run_cli("fit", *common, *short)
    run = tmp_path / "cnn" / "version_0"
    for name in ("config.yaml", "metrics.csv", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    assert "seed_everything: 42" in (run / "config.yaml").read_text()
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss_step", "val/loss", "val/acc", "train/acc"} <= set(header)
    kept = ("config.yaml", "metrics.csv", "hparams.yaml", "checkpoints/best.ckpt", "checkpoints/last.ckpt")
    before = {name: (run / name).read_bytes() for name in kept}

    run_cli("fit", *common, *short)  # the same experiment again: a new version, the first untouched
    assert (tmp_path / "cnn" / "version_1" / "checkpoints" / "best.ckpt").is_file()
    assert {name: (run / name).read_bytes() for name in kept} == before

    run_cli("test", *common, "--trainer.limit_test_batches=2", f"--ckpt_path={run / 'checkpoints' / 'best.ckpt'}")
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert set(metrics) == {"test/acc", "test/loss", "partial", "test_images", "test_images_total"}
    assert 0.0 <= metrics["test/acc"] <= 1.0 and metrics["partial"] is True  # 2 batches: not the whole test set
    assert 0 < metrics["test_images"] < metrics["test_images_total"] == 10000
    assert (run / "figures" / "curves.png").is_file()  # drawn by fit from its metrics.csv
    assert (run / "figures" / "test__confusion_matrix.png").is_file()
    assert (run / "test" / "metrics.csv").is_file()  # the fit's metrics.csv is kept
    assert {name: (run / name).read_bytes() for name in kept} == before  # a test changes nothing of the fit
    run_cli("test", *common, "--trainer.limit_test_batches=1", f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}")
    first, second = (json.loads((run / d / "test_metrics.json").read_text()) for d in ("test", "test-2"))
    assert first == metrics and second == json.loads((run / "test_metrics.json").read_text())  # both reports kept
    assert "val/acc" in (run / "metrics.csv").read_text()

    run_cli("predict", *common, "--trainer.limit_predict_batches=1", "--ckpt_path=best")
    rows = (tmp_path / "cnn" / "version_1" / "predictions.csv").read_text().splitlines()  # newest run's best
    assert rows[0] == "index,label,pred,prob" and len(rows) == 1 + 1000


BAD_VALUES = [  # (dotted key, value, what the message must contain)
    ("model.init_args.encoder.init_args.latent_dim", 0, r"latent_dim: .*PositiveInt.*v>0"),
    ("model.init_args.encoder.init_args.latent_dim", "abc", "latent_dim"),
    ("model.init_args.encoder.init_args.laten_dim", 3, "laten_dim"),
    ("model.init_args.encoder.init_args.dropout", 1.5, "dropout"),
    ("model.init_args.encoder.init_args.kernel_sizes", 13, "layer 2 .*shrinks"),
    ("model.init_args.head_dropout", 1.5, "head_dropout"),
    ("model.init_args.optim.lr", -1, r"optim\.lr: .*-1 does not conform to restriction v>0"),
    ("model.init_args.optim.name", "adagrad", "optim.name"),
    ("data.val_fraction", 1.2, "val_fraction"),
    ("data.train_subset", 0, "train_subset"),
    ("data.train_subset", 48001, "train_subset=48001 is larger than the training split"),
    ("data.batch_sise", 64, "batch_sise"),
    ("trainer.max_epochs", "many", "max_epochs"),
]


def as_yaml(key: str, value) -> str:
    tree = value
    for part in reversed(key.split(".")):
        tree = {part: tree}
    return yaml.safe_dump(tree)


@pytest.mark.parametrize("where", ["command_line", "yaml"])
@pytest.mark.parametrize("key, value, message", BAD_VALUES, ids=[f"{k.split('.')[-1]}={v}" for k, v, _ in BAD_VALUES])
def test_bad_config_fails_before_training_naming_the_key(key, value, message, where, tmp_path, capsys):
    if where == "yaml":
        bad = tmp_path / "bad.yaml"
        bad.write_text(as_yaml(key, value))
        extra = ["-c", str(bad)]
    else:
        extra = [f"--{key}={value}"]
    with pytest.raises(SystemExit) as e:
        run_cli("fit", "-c", str(CONFIGS / "cnn.yaml"), f"--runs_dir={tmp_path}", *extra)
    assert e.value.code != 0
    err = capsys.readouterr().err
    assert re.search(message, err)
    assert "Union subtypes" not in err and "Given value" not in err  # the reason, not jsonargparse's dump
    assert len(err.splitlines()) <= 6, err  # a short usage line, not the whole option list
    assert not list(tmp_path.rglob("*.ckpt")) and not list(tmp_path.rglob("metrics.csv"))


# (key, value, what the message must say) for the short form --model.KEY, the long --model.init_args.KEY and YAML
FRONT_DOOR = [
    ("optim.lr", "abc", r"model\.optim\.lr: Not of type PositiveFloat: could not convert string to float: 'abc'"),
    ("lr", 0.01, r"model\.lr: unknown key of Classifier; did you mean 'optim\.lr'\?"),
    ("lrr", 1, r"model\.lrr: unknown key of Classifier; did you mean 'optim\.lr'\?"),
    ("class_path", "dlmnist.models.Nope", r"model\.class_path: unknown class .*AutoEncoder, Classifier, "),
    ("encoder.latnt_dim", 3, r"model\.encoder\.latnt_dim: unknown key of ConvEncoder; did you mean 'latent_dim'"),
]


@pytest.mark.parametrize("form", ["short", "long", "yaml"])
@pytest.mark.parametrize("key, value, message", FRONT_DOOR, ids=[k for k, _, _ in FRONT_DOOR])
def test_model_errors_name_key_value_and_what_is_allowed(key, value, message, form, tmp_path, capsys):
    if key == "class_path" and form == "long":
        pytest.skip("class_path has no init_args form")
    if form == "yaml":
        tree = {key: value} if key == "class_path" else {"init_args": as_yaml_tree(key, value)}
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"model": tree}))
        extra = ["-c", str(tmp_path / "bad.yaml")]
    else:
        long = form == "long" and key != "class_path"
        extra = [f"--model.{'init_args.' if long else ''}{key}={value}"]
    with pytest.raises(SystemExit) as e:
        run_cli("fit", "-c", str(CONFIGS / "cnn.yaml"), f"--runs_dir={tmp_path}", *extra)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert "NestedArg" not in err and "Problem with given class_path" not in err
    assert len([ln for ln in err.splitlines() if "error" in ln]) == 1, err  # one line of error


def as_yaml_tree(key: str, value) -> dict:
    """``encoder.latnt_dim`` -> ``{"encoder": {"init_args": {"latnt_dim": value}}}``."""
    *parents, leaf = key.split(".")
    tree = {leaf: value}
    for part in reversed(parents):
        tree = {part: tree if part == "optim" else {"init_args": tree}}  # optim is a dataclass: no init_args
    return tree


def test_unknown_top_level_key_names_the_closest(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_cli("fit", "-c", str(CONFIGS / "cnn.yaml"), f"--runs_dir={tmp_path}", "--data.batch_sise=64")
    assert "did you mean --data.batch_size?" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "-c", "configs/nope.yaml"], "config 'configs/nope.yaml' is neither a file nor a packaged recipe"),
        (["fitt"], "unknown command 'fitt'; did you mean 'fit'?"),
        ([], "summarize"),  # dlmnist alone: the help, every command
    ],
)
def test_entry_answers_without_lightning(args, message):
    code = (
        "import sys\nfrom dlmnist.entry import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit as e:\n    print('EXIT', e.code)\n"
        "print('HEAVY', sorted(m for m in ('torch', 'lightning') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert message in out.stdout + out.stderr and "HEAVY []" in out.stdout
    assert ("EXIT 0" if not args else "EXIT 2") in out.stdout
    if not args:
        from dlmnist.entry import EXTRA_COMMANDS, LIGHTNING_COMMANDS

        assert all(f"\n  {name} " in out.stdout for name in [*LIGHTNING_COMMANDS, *EXTRA_COMMANDS])


def test_fit_and_test_print_their_run_folder(mnist_dir, tmp_path, capsys):
    common = ["-c", str(CONFIGS / "cnn.yaml"), f"--data.data_dir={mnist_dir}", f"--runs_dir={tmp_path}"]
    run_cli("fit", *common, "--trainer.max_steps=2", "--trainer.limit_val_batches=1")
    out = capsys.readouterr().out
    run = tmp_path / "cnn" / "version_0"
    lines = [ln for ln in out.splitlines() if "run folder" in ln]
    assert len(lines) == 2 and all(ln.endswith(str(run)) for ln in lines), out
    assert "litlogger" not in out
    run_cli("test", *common, "--trainer.limit_test_batches=1", f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}")
    assert f"dlmnist test: done; run folder {run}" in capsys.readouterr().out


def test_error_reason_keeps_the_reason_and_drops_the_subtype_dump():
    from dlmnist.config import error_reason

    dump = (
        'Parser key "trainer.max_epochs":\n  Does not validate against any of the Union subtypes\n'
        "  Subtypes: [<class 'int'>, <class 'NoneType'>]\n  Errors:\n    - Expected a <class 'int'>\n"
        "    - Expected a <class 'NoneType'>\n  Given value type: <class 'str'>\n  Given value: many"
    )
    assert error_reason(Exception(dump)) == "trainer.max_epochs: expected int or NoneType, got 'many'"
    own = "Does not validate against any of the Union subtypes\nErrors:\n  - lr must be positive, got -1\n"
    assert error_reason(Exception(own + "  - Expected a <class 'NoneType'>\n")) == "lr must be positive, got -1"
    assert error_reason(Exception("unrecognized arguments: --x")) == "unrecognized arguments: --x"


def test_missing_checkpoint_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_cli("fit", "-c", str(CONFIGS / "cnn.yaml"), f"--runs_dir={tmp_path}", "--ckpt_path=/no/such.ckpt")
    assert "/no/such.ckpt" in capsys.readouterr().err


def test_missing_config_file_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_cli("fit", "-c", str(tmp_path / "nope.yaml"))
    assert "nope.yaml" in capsys.readouterr().err


def test_console_script_lists_subcommands():
    exe = ROOT / ".venv" / "bin" / "dlmnist"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "dlmnist.entry"]
    out = subprocess.run([*cmd, "--help"], capture_output=True, text=True, check=True).stdout
    for sub in ("fit", "validate", "test", "predict", "suite", "report", "summarize"):
        assert f"\n  {sub} " in out


def test_top_level_help_lists_exactly_lightnings_subcommands():
    from lightning.pytorch.cli import LightningCLI

    from dlmnist.entry import EXTRA_COMMANDS, LIGHTNING_COMMANDS

    assert list(LIGHTNING_COMMANDS) == list(LightningCLI.subcommands())
    assert not set(EXTRA_COMMANDS) & set(LIGHTNING_COMMANDS)


@pytest.mark.parametrize(
    "name", ["summarize", "suite", "report", "tune", "latent", "compare", "curves", "filters", "export"]
)
def test_every_extra_command_resolves_to_a_function(name):
    import importlib

    from dlmnist.entry import EXTRA_COMMANDS

    module, func = EXTRA_COMMANDS[name][0].split(":")
    assert callable(getattr(importlib.import_module(module), func))


def test_top_level_help_imports_neither_torch_nor_lightning():
    code = (
        "import sys\n"
        "from dlmnist.entry import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "print('HEAVY', sorted(m for m in ('torch', 'lightning', 'torchvision', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert "HEAVY []" in out
    assert "usage: dlmnist" in out


def test_python_dash_m_dlmnist_gives_the_top_level_help():
    from dlmnist.entry import help_text

    out = subprocess.run([sys.executable, "-m", "dlmnist", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0
    assert out.stdout == help_text()


def test_subcommand_help_still_comes_from_lightning_cli(capsys):
    from dlmnist.entry import main

    with pytest.raises(SystemExit) as e:
        main(["fit", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--trainer.max_epochs" in out and "--runs_dir" in out


def test_an_autoencoders_latent_dim_is_set_once_and_reaches_the_decoder(capsys):
    with pytest.raises(SystemExit):
        run_cli("fit", "-c", str(CONFIGS / "ae_conv.yaml"), "--model.encoder.init_args.latent_dim=16", "--print_config")
    model = yaml.safe_load(capsys.readouterr().out)["model"]["init_args"]
    assert model["encoder"]["init_args"]["latent_dim"] == model["decoder"]["init_args"]["latent_dim"] == 16


def test_a_vaes_z_size_is_set_once(capsys):
    with pytest.raises(SystemExit):
        run_cli("fit", "-c", str(CONFIGS / "vae.yaml"), "--model.latent_dim=3", "--print_config")
    model = yaml.safe_load(capsys.readouterr().out)["model"]["init_args"]
    assert model["latent_dim"] == model["decoder"]["init_args"]["latent_dim"] == 3


def test_a_decoder_latent_dim_given_against_the_encoders_is_a_clear_error(tmp_path, capsys):
    args = ["-c", str(CONFIGS / "ae_conv.yaml"), "--model.decoder.init_args.latent_dim=5", f"--runs_dir={tmp_path}"]
    with pytest.raises(SystemExit):
        run_cli("fit", *args)
    assert "decoder latent_dim 5 differs from the encoder's latent_dim 12" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("native, precision", [("1", "bf16-mixed"), ("0", "32-true")])
def test_bf16_overlay_falls_back_to_float32_on_a_cpu_without_native_bf16(native, precision, mnist_dir, tmp_path,
                                                                          monkeypatch, capsys):
    monkeypatch.setenv("DLMNIST_CPU_BF16", native)  # what /proc/cpuinfo would say on the other kind of CPU
    args = ["-c", str(CONFIGS / "cnn.yaml"), "-c", str(CONFIGS / "trainer" / "cpu_bf16.yaml")]
    run_cli("fit", *args, f"--data.data_dir={mnist_dir}", f"--runs_dir={tmp_path}", "--trainer.max_steps=2",
            "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false")
    saved = yaml.safe_load((tmp_path / "cnn" / "version_0" / "config.yaml").read_text())["trainer"]["precision"]
    said = [line for line in capsys.readouterr().err.splitlines() if "no native bf16" in line]
    assert saved == precision and len(said) == (native == "0")


def test_fit_help_leads_with_the_configs_model_and_data(capsys):
    """The help shows the resolved config's values: the files, their includes and the overrides given."""
    with pytest.raises(SystemExit) as e:
        run_cli("fit", "-c", str(CONFIGS / "cnn.yaml"), "--model.optim.lr=0.002", "--help")
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert re.match(r"usage: \S+ fit \[-h\] \[-c CONFIG\]", out)  # the prog is pytest here
    assert out.index("--model.optim.lr") < out.index("--data.batch_size") < out.index("--trainer.max_epochs")
    assert re.search(r"--model\.optim\.lr LR .*?default:\s+0\.002\)", out, re.DOTALL)  # resolved: the override
    assert "--model.encoder.init_args.latent_dim" in out  # the arguments of the encoder the config gives it


def test_command_line_model_argument_wins_over_checkpoint_hparams(mnist_dir, tmp_path):
    """``test --ckpt_path X``: the checkpoint's model arguments replace the config file's (so a model trained with
    another latent size loads), but a ``--model.*`` given on the command line is kept (k = 5000 at test time)."""
    common = ["-c", str(CONFIGS / "vae.yaml"), f"--data.data_dir={mnist_dir}", f"--runs_dir={tmp_path}"]
    run_cli("fit", *common, "--model.latent_dim=8", "--trainer.max_steps=2", "--trainer.limit_val_batches=1")
    ckpt = tmp_path / "vae" / "version_0" / "checkpoints" / "last.ckpt"
    run_cli("test", *common, "--trainer.limit_test_batches=1", f"--ckpt_path={ckpt}", "--model.nll_samples=3")
    hparams = yaml.safe_load((tmp_path / "vae" / "version_0" / "test" / "hparams.yaml").read_text())
    assert hparams["latent_dim"] == 8  # from the checkpoint, not vae.yaml's 16
    assert hparams["nll_samples"] == 3  # from the command line, not the checkpoint's 100


def test_commands_started_together_never_share_a_run_folder(tmp_path):
    """Two `dlmnist test` of one run (e.g. two tune workers testing the best trial), or two fresh fits of one
    name, each get a folder of their own: the folder is claimed when it is picked, not when first written."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from dlmnist.runs import free_subdir, new_version, release

    start = Barrier(8)

    def together(pick):
        start.wait()
        return pick()

    with ThreadPoolExecutor(8) as pool:
        subs = list(pool.map(lambda _: together(lambda: free_subdir(tmp_path / "run", "test")[0]), range(8)))
        runs = list(pool.map(lambda _: together(lambda: new_version(tmp_path / "exp")[0].name), range(8)))
    assert sorted(subs) == ["test"] + [f"test-{k}" for k in range(2, 9)]
    assert sorted(runs, key=lambda n: int(n.split("_")[1])) == [f"version_{k}" for k in range(8)]
    run, made = new_version(tmp_path / "new" / "exp")  # a command that fails before writing leaves nothing
    assert made == [run, run.parent, run.parent.parent]
    release(made)
    assert not (tmp_path / "new").exists()


def test_each_command_attaches_only_the_callbacks_that_act_in_it(mnist_dir, tmp_path):
    """Lightning calls every attached callback at every hook, six of them each training step: a classifier's fit
    carries no test or prediction writer and no reconstruction figure; test and predict get their writers."""

    def attached(config: str, command: str, *extra: str) -> set[str]:
        out = tmp_path / f"{config}_{command}.json"
        args = ["-c", str(CONFIGS / f"{config}.yaml"), f"--data.data_dir={mnist_dir}", f"--runs_dir={tmp_path}"]
        record = ["--trainer.callbacks+=tests.fault_callbacks.RecordCallbacks", f"--trainer.callbacks.out={out}"]
        run_cli(command, *args, *record, *extra)
        return set(json.loads(out.read_text()))

    short = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1"]
    fit = attached("cnn", "fit", *short)
    assert {"FiniteLossGuard", "ModelCheckpoint", "RNGState"} <= fit
    assert not fit & {"TestMetricsWriter", "PredictionWriter", "ReconstructionGrid"}
    best = str(tmp_path / "cnn" / "version_0" / "checkpoints" / "best.ckpt")
    assert "TestMetricsWriter" in attached("cnn", "test", "--trainer.limit_test_batches=1", f"--ckpt_path={best}")
    assert "PredictionWriter" in attached("cnn", "predict", "--trainer.limit_predict_batches=1", f"--ckpt_path={best}")
    assert "ReconstructionGrid" in attached("ae_dense", "fit", *short)  # an autoencoder draws its reconstructions


NO_GPU = "no GPU on this machine; use --trainer.accelerator=cpu, or auto (a GPU where there is one)"


@pytest.mark.skipif(torch.cuda.is_available() or torch.backends.mps.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("accelerator", ["gpu", "cuda", "mps"])
def test_an_accelerator_this_machine_lacks_is_one_line_and_leaves_no_run_folder(
    accelerator, mnist_dir, tmp_path, capsys
):
    """``gpu`` through the real command in its own process (all of stderr: no traceback); the others in this one."""
    args = ["-c", str(CONFIGS / "cnn.yaml"), f"--data.data_dir={mnist_dir}", f"--runs_dir={tmp_path / 'runs'}"]
    args.append(f"--trainer.accelerator={accelerator}")
    if accelerator == "gpu":
        out = subprocess.run([sys.executable, "-m", "dlmnist", "fit", *args], capture_output=True, text=True, cwd=ROOT)
        code, err = out.returncode, out.stderr
        assert "Traceback" not in err and "run folder" not in out.stdout
    else:
        with pytest.raises(SystemExit) as e:
            run_cli("fit", *args)
        code, err = e.value.code, capsys.readouterr().err
    assert code == 2, err
    errors = [ln for ln in err.splitlines() if "error" in ln.lower()]
    assert errors == [f"dlmnist: error: trainer.accelerator={accelerator}: {NO_GPU}"], err
    assert not (tmp_path / "runs").exists()


def test_default_root_dir_holds_the_run_folders_and_best_last_find_them(mnist_dir, tmp_path):
    root = tmp_path / "root"
    args = ["-c", str(CONFIGS / "cnn.yaml"), f"--data.data_dir={mnist_dir}", f"--trainer.default_root_dir={root}"]
    run_cli("fit", *args, "--trainer.max_steps=2", "--trainer.limit_val_batches=1")
    run = root / "runs" / "cnn" / "version_0"  # --runs_dir (default runs) under the given root
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "metrics.csv").is_file()
    assert yaml.safe_load((run / "config.yaml").read_text())["trainer"]["default_root_dir"] == str(root)
    run_cli("test", *args, "--ckpt_path=last", "--trainer.limit_test_batches=1")
    assert (run / "test_metrics.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]  # nothing elsewhere


def test_a_logger_given_in_the_config_is_used_as_given(mnist_dir, tmp_path):
    """A CSVLogger of the user's writes where the user said, beside the run folder's own metrics.csv."""
    mine = tmp_path / "mine"
    logger = ["--trainer.logger=lightning.pytorch.loggers.CSVLogger", f"--trainer.logger.save_dir={mine}"]
    args = ["-c", str(CONFIGS / "cnn.yaml"), f"--data.data_dir={mnist_dir}", f"--runs_dir={tmp_path / 'runs'}"]
    run_cli("fit", *args, *logger, "--trainer.max_steps=2", "--trainer.limit_val_batches=1")
    assert (mine / "lightning_logs" / "version_0" / "metrics.csv").is_file()
    assert (tmp_path / "runs" / "cnn" / "version_0" / "metrics.csv").is_file()
