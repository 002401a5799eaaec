import gzip

import numpy as np
import pytest
import torch

from dlmnist.data.idx import IDXError, encode_idx, parse_idx, read_idx


def test_round_trip_raw_and_gz(tmp_path):
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a-idx3-ubyte").write_bytes(encode_idx(x))
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(encode_idx(x)))
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        t = read_idx(tmp_path / name)
        assert t.dtype == torch.uint8 and t.shape == (2, 3, 4)
        assert torch.equal(t, torch.from_numpy(x))


def test_truncated_file_names_file_and_sizes(tmp_path):
    raw = encode_idx(np.zeros((5, 28, 28), dtype=np.uint8))
    path = tmp_path / "imgs"
    path.write_bytes(raw[:-10])
    with pytest.raises(IDXError, match=r"imgs: truncated: shape \(5, 28, 28\) needs 3920 data bytes, found 3910"):
        read_idx(path)


@pytest.mark.parametrize(
    "raw, message",
    [(b"", "empty file"), (b"\x01\x00\x08\x01", "bad magic"), (b"\x00\x00\x0d\x01\x00\x00\x00\x01", "dtype 0x0d")],
)
def test_bad_headers(raw, message):
    with pytest.raises(IDXError, match=message):
        parse_idx(raw, "f")
