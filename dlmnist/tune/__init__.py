"""Hyperparameter search with Optuna: search specs, the pruning callback and `dlmnist tune`."""
