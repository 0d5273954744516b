"""Real files in, the study's splits out; and each way the files can be wrong, one clear message."""

import gzip
import shutil

import pytest
import torch

from mnistbench import data
from mnistbench.cases.case import TrainCase
from mnistbench.data import DataError, load_raw, make_split
from mnistbench.train import batches


def test_pooled_split_is_70_10_20_stratified_and_disjoint(mnist):
    assert mnist.sizes == {"n_train": 49000, "n_val": 7000, "n_test": 14000}
    whole = torch.bincount(torch.cat([mnist.y_train, mnist.y_val, mnist.y_test]), minlength=10)
    share = torch.bincount(mnist.y_test, minlength=10) / len(mnist.y_test)
    assert torch.allclose(share, whole / whole.sum(), atol=0.002)
    assert mnist.mean == pytest.approx(0.1307, abs=0.002) and mnist.std == pytest.approx(0.3081, abs=0.002)


def test_official_split_keeps_the_10k_test_file(data_dir, tmp_path):
    raw = load_raw("MNIST", data_dir, tmp_path, download=False)
    split = make_split(raw, "official")
    assert split.sizes == {"n_train": 54000, "n_val": 6000, "n_test": 10000}
    assert torch.equal(split.x_test, raw.images[60000:])


def test_split_depends_on_its_seed_only(data_dir, tmp_path):
    raw = load_raw("FashionMNIST", data_dir, tmp_path, download=False)
    a, b, c = make_split(raw, split_seed=0), make_split(raw, split_seed=0), make_split(raw, split_seed=1)
    assert torch.equal(a.y_train, b.y_train) and not torch.equal(a.y_train, c.y_train)


def test_limits_are_stratified_and_checked(mnist):
    small = mnist.limited(1000, 500, seed=0)
    assert small.sizes == {"n_train": 1000, "n_val": 500, "n_test": 500}
    assert torch.bincount(small.y_train, minlength=10).min() >= 80
    with pytest.raises(DataError, match="larger than the train split .49000 images"):
        mnist.limited(50000, None, seed=0)


def test_decoded_cache_is_reused_and_keyed_on_the_sources(data_dir, tmp_path, monkeypatch):
    load_raw("MNIST", data_dir, tmp_path, download=False)
    assert (tmp_path / "MNIST.pt").is_file()
    monkeypatch.setattr(data, "_decode", lambda *a: pytest.fail("decoded again despite the cache"))
    assert len(load_raw("MNIST", data_dir, tmp_path, download=False).labels) == 70000


def test_per_batch_input_matches_torchvision_transforms(mnist):
    from torchvision import transforms

    x = batches.to_input(mnist.x_train[:4], mnist, 28)
    tv = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mnist.mean,), (mnist.std,))])
    from PIL import Image

    ref = torch.stack([tv(Image.fromarray(img.numpy(), mode="L")) for img in mnist.x_train[:4]])
    assert torch.allclose(x, ref, atol=1e-6)
    assert batches.to_input(mnist.x_train[:2], mnist, 64).shape == (2, 1, 64, 64)


# ---------------------------------------------------------------- broken data


@pytest.fixture
def broken_root(data_dir, tmp_path):
    """A private copy of the real MNIST files that a test may damage."""
    root = tmp_path / "data"
    shutil.copytree(data_dir / "MNIST", root / "MNIST")
    for path in (root / "MNIST" / "raw").iterdir():
        path.chmod(0o644)
    return root


def _rewrite(path, change):
    blob = bytearray(gzip.decompress(path.read_bytes()))
    path.write_bytes(gzip.compress(bytes(change(blob)), compresslevel=1))


def _load(root, tmp_path):
    return load_raw("MNIST", root, tmp_path / "cache", download=False)


def test_missing_files_offline(tmp_path):
    expected = r"train-images-idx3-ubyte.*not found under .*MNIST/raw.*downloading is off"
    with pytest.raises(DataError, match=expected) as err:
        load_raw("MNIST", tmp_path / "nowhere", tmp_path, download=False)
    assert "--data-dir" in str(err.value)


def test_truncated_gzip(broken_root, tmp_path):
    path = broken_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: cannot be read as gzip.*truncated"):
        _load(broken_root, tmp_path)


def test_wrong_magic_number(broken_root, tmp_path):
    path = broken_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz"
    _rewrite(path, lambda b: b"\x00\x00\x08\x01" + b[4:])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: IDX magic number is 2049, expected 2051"):
        _load(broken_root, tmp_path)


def test_wrong_md5(broken_root, tmp_path):
    path = broken_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz"
    _rewrite(path, lambda b: b[:-1] + bytes([(b[-1] + 1) % 256]))
    expected = "MD5 of the uncompressed bytes is [0-9a-f]{32}.*expected 2646ac647ad5339dbf082846283269ea"
    with pytest.raises(DataError, match=expected):
        _load(broken_root, tmp_path)
    assert not (tmp_path / "cache" / "MNIST.pt").exists()


def test_counts_that_disagree(broken_root, tmp_path):
    # a labels file one label short, its header still claiming 10000
    _rewrite(broken_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz", lambda b: b[:-1])
    with pytest.raises(DataError, match=r"header says 10000 items of shape \[\] \(10000 bytes\) and 9999 bytes follow"):
        _load(broken_root, tmp_path)


def test_labels_outside_0_to_9(broken_root, tmp_path):
    _rewrite(broken_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz", lambda b: b[:20] + b"\x0b" + b[21:])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: label 11 outside 0-9"):
        _load(broken_root, tmp_path)


def test_uncompressed_files_work_as_torchvision_leaves_them(broken_root, tmp_path):
    raw = broken_root / "MNIST" / "raw"
    for gz in raw.glob("*.gz"):
        (raw / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    assert len(_load(broken_root, tmp_path).labels) == 70000


def test_command_line_reports_ok_and_errors(data_dir, tmp_path, capsys):
    assert data.main(["--data-dir", str(data_dir), "--cache-dir", str(tmp_path), "--dataset", "MNIST"]) == 0
    assert "MNIST: OK, 70000 images" in capsys.readouterr().out
    assert data.main(["--data-dir", str(tmp_path / "none"), "--dataset", "MNIST"]) == 1


def test_case_never_reaches_data_with_a_bad_name():
    with pytest.raises(ValueError, match="Invalid dataset"):
        TrainCase(dataset="EMNIST")
