"""The experiment suite: the graph of configs/suite.yaml, its runner and the run folders it reads."""
