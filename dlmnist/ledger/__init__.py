"""The results ledger: one JSON record per finished run in ``results/ledger.jsonl``, and the docs' tables made from it.

:mod:`dlmnist.ledger.record` builds a record from a run folder and appends it (the suite does so for every
cell it finishes, ``dlmnist ledger add RUN`` by hand); :mod:`dlmnist.ledger.blocks` writes the blocks between
``<!-- ledger:NAME -->`` and ``<!-- /ledger -->`` in README.md and docs/ from the table specs in
``results/tables.yaml``; :mod:`dlmnist.ledger.command` is ``dlmnist ledger add|render|check|diff|list``.
"""
