"""dlmnist's tests (make test, make test-fast)."""
import os

# pytest -n N: each worker gets its share of the cores before torch is imported (this package is imported before
# conftest.py; the processes the tests start inherit it), instead of N workers each running as many threads as
# there are cores. On the 2-core machine, two workers of two threads each spent a third more CPU time on the same
# tests than two workers of one.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))
