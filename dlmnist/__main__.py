"""``python -m dlmnist``: the same as the ``dlmnist`` command."""

from dlmnist.entry import main

main()
