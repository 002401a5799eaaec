"""dlmnist: classic MNIST deep-feature-learning experiments as one Lightning package."""

__version__ = "0.1.0"
