import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from objectives.images import NPZ_KEYS, download, load_images
from objectives.xray import _shift, augment_batch
from tuner.errors import TunerError


def write_npz(path, n=(12, 6, 6), channels=None, classes=2, side=28):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count in zip(("train", "val", "test"), n):
        shape = (count, side, side) if channels is None else (count, side, side, channels)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(count) % classes).reshape(-1, 1)
    np.savez(path, **arrays)
    return path


def test_pneumoniamnist_real_file(data_dir):
    data = load_images({"name": "pneumoniamnist", "dir": str(data_dir)})
    assert data.train.x.shape == (4707, 1, 28, 28)
    assert data.val.x.shape == (524, 1, 28, 28)
    assert data.test.x.shape == (624, 1, 28, 28)
    assert data.n_classes == 2
    assert [int(data.train.y.sum()), int(data.val.y.sum()), int(data.test.y.sum())] == [3494, 389, 390]
    assert abs(float(data.train.x.mean())) < 1e-4
    assert abs(float(data.train.x.std()) - 1.0) < 1e-3


def test_npz_multiclass_rgb(tmp_path):
    data = load_images({"path": str(write_npz(tmp_path / "rgb.npz", channels=3, classes=3))})
    assert data.train.x.shape == (12, 3, 28, 28)
    assert data.n_classes == 3


def test_npz_resized_by_setting(tmp_path):
    data = load_images({"path": str(write_npz(tmp_path / "small.npz")), "size": 16})
    assert data.train.x.shape == (12, 1, 16, 16)


def test_npz_missing_keys(tmp_path):
    path = tmp_path / "partial.npz"
    np.savez(path, train_images=np.zeros((2, 28, 28), dtype=np.uint8))
    with pytest.raises(TunerError) as caught:
        load_images({"path": str(path)})
    missing = ", ".join(k for k in NPZ_KEYS if k != "train_images")
    assert caught.value.problems == [f"data.path: '{path}' lacks {missing}; a MedMNIST file has {', '.join(NPZ_KEYS)}."]


def test_npz_unreadable(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_text("not an archive")
    with pytest.raises(TunerError) as caught:
        load_images({"path": str(path)})
    assert caught.value.problems[0].startswith(f"data.path: cannot read '{path}' as a .npz archive")


def test_npz_one_class(tmp_path):
    path = write_npz(tmp_path / "one.npz", classes=1)
    with pytest.raises(TunerError) as caught:
        load_images({"path": str(path)})
    assert caught.value.problems == [f"data: '{path}' has one class only (0) in its training labels; a classifier needs at least 2."]


def make_folder(root, sizes_by_class, mode="L"):
    for name, sizes in sizes_by_class.items():
        (root / name).mkdir(parents=True)
        for i, (width, height) in enumerate(sizes):
            Image.new(mode, (width, height), color=40 * i if mode == "L" else (40 * i, 0, 0)).save(root / name / f"{i}.png")
    return root


def test_image_folder_mixed_sizes(tmp_path):
    sizes = [(30, 40), (64, 64), (20, 10), (28, 28), (100, 50)]
    root = make_folder(tmp_path / "images", {"normal": sizes, "pneumonia": sizes})
    data = load_images({"path": str(root), "size": 32, "val_fraction": 0.2, "test_fraction": 0.2})
    assert data.classes == ("normal", "pneumonia")
    assert data.train.x.shape[1:] == (1, 32, 32)
    assert len(data.train) + len(data.val) + len(data.test) == 10
    assert data.n_classes == 2


def test_image_folder_rgb(tmp_path):
    sizes = [(28, 28)] * 5
    root = make_folder(tmp_path / "images", {"a": sizes, "b": sizes}, mode="RGB")
    assert load_images({"path": str(root)}).train.x.shape[1] == 3


def test_image_folder_needs_two_classes(tmp_path):
    root = make_folder(tmp_path / "images", {"only": [(28, 28)] * 3})
    with pytest.raises(TunerError) as caught:
        load_images({"path": str(root)})
    assert caught.value.problems == [f"data.path: '{root}' has 1 class subfolders; an image folder needs one subfolder per class, at least 2."]


def test_missing_named_file_says_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNER_DATA_DIR", str(tmp_path))
    with pytest.raises(TunerError) as caught:
        load_images({"name": "chestmnist", "dir": str(tmp_path)})
    assert caught.value.problems[0].startswith(f"data: 'chestmnist.npz' not found in {tmp_path}")


def test_download_checks_md5(tmp_path):
    source = write_npz(tmp_path / "source.npz")
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    target = download(source.as_uri(), md5, tmp_path / "cache" / "copy.npz")
    assert target.read_bytes() == source.read_bytes()

    with pytest.raises(TunerError) as caught:
        download(source.as_uri(), "0" * 32, tmp_path / "cache" / "bad.npz")
    assert caught.value.problems == [f"data: downloaded bad.npz has MD5 {md5}, expected {'0' * 32}. The download is corrupt; run again."]
    assert not (tmp_path / "cache" / "bad.npz").exists()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["copy.npz"]


def test_shift_moves_pixels_and_pads_zero():
    images = torch.arange(1, 17, dtype=torch.float32).reshape(1, 1, 4, 4)
    shifted = _shift(images, dx=1, dy=0, pad=1)
    assert torch.equal(shifted[..., :, :3], images[..., :, 1:])
    assert torch.equal(shifted[..., :, 3], torch.zeros(1, 1, 4))


def test_augment_without_shift_or_flip_is_identity():
    images = torch.randn(3, 1, 6, 6)
    assert torch.equal(augment_batch(images, torch.Generator().manual_seed(3), flip=False, max_shift=0), images)


def test_augment_flip_mirrors_some_images():
    images = torch.randn(64, 1, 6, 6)
    out = augment_batch(images, torch.Generator().manual_seed(0), flip=True, max_shift=0)
    mirrored = [torch.equal(o, i.flip(-1)) for o, i in zip(out, images)]
    unchanged = [torch.equal(o, i) for o, i in zip(out, images)]
    assert all(m or u for m, u in zip(mirrored, unchanged))
    assert 10 < sum(mirrored) < 54
