from dlmnist.data.datamodule import MNISTDataModule
from dlmnist.data.idx import IDXError, read_idx
from dlmnist.data.sources import DataError, ensure_files

__all__ = ["MNISTDataModule", "DataError", "IDXError", "ensure_files", "read_idx"]
