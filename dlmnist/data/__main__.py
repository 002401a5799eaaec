"""``python -m dlmnist.data``: fetch and verify the IDX files (what ``make data`` runs)."""

from __future__ import annotations

import argparse
import sys

from dlmnist.data.sources import DATASETS, DataError, ensure_files


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dlmnist.data", description=__doc__)
    p.add_argument("--data_dir", default=None, help="default: $DLMNIST_DATA, else a per-user cache folder")
    p.add_argument("--dataset", choices=sorted(DATASETS), nargs="+", default=["mnist"])
    p.add_argument("--no-download", dest="download", action="store_false")
    args = p.parse_args(argv)
    for name in args.dataset:
        try:
            folder = ensure_files(args.data_dir, name, download=args.download)
        except DataError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"{name}: verified IDX files in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
