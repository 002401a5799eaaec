"""``python -m dlmnist.cli fit ...`` (what torchrun starts): LightningCLI's commands without the dispatcher."""

from dlmnist.cli.app import main

main()
