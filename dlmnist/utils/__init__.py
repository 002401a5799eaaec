"""Leaf utilities that several parts of the package use: run files written atomically, figures, metrics.csv.

Nothing here imports another part of dlmnist, so any part may import it without making an import cycle.
"""
