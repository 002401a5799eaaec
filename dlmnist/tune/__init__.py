"""Hyperparameter search with Optuna: search specs and `dlmnist tune` (pruning: optuna-integration)."""
