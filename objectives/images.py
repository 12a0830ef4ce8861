"""Image data: MedMNIST-format .npz files and image folders, as normalised tensors."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.nn import functional as F

from objectives.data import DATA_DIR_ENV, Dataset, Split, data_dirs, fingerprint, locate, split_settings
from tuner.errors import TunerError

logger = logging.getLogger(__name__)

NPZ_KEYS = tuple(f"{split}_{kind}" for split in ("train", "val", "test") for kind in ("images", "labels"))
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
DOWNLOAD_TIMEOUT_S = 60

# Official MedMNIST v2 records (Zenodo), with the MD5 that the medmnist package checks.
MEDMNIST_FILES: dict[str, tuple[str, str]] = {
    "pneumoniamnist.npz": ("https://zenodo.org/record/6496656/files/pneumoniamnist.npz?download=1", "28209eda62fecd6e6a2d98b1501bb15f"),
}


def load_images(settings: Mapping[str, Any]) -> Dataset:
    """Load an image data set from a MedMNIST-style .npz file or an image folder.

    Settings: `path` is a .npz file or a folder with one subfolder per class.
    Without it, `name` names a data set in the data folders, downloaded when
    missing. `size` is the side in pixels that images are resized to, and
    `channels` is 1 or 3 (default: those of the data).
    """
    path = _find(settings)
    if path.is_dir():
        return _from_folder(path, settings)
    return _from_npz(path, settings)


def download(url: str, md5: str, target: Path) -> Path:
    """Download `url` to `target`, checking its MD5, through a temporary file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("Downloading %s to %s", url, target)
    digest = hashlib.md5()
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as partial:
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    digest.update(chunk)
                    partial.write(chunk)
        except (urllib.error.URLError, OSError) as error:
            Path(partial.name).unlink(missing_ok=True)
            raise TunerError(
                f"data: cannot download {target.name} from {url} ({error}). Without network, put the file in "
                f"{target.parent} or set {DATA_DIR_ENV} to its folder."
            ) from None
    if digest.hexdigest() != md5:
        Path(partial.name).unlink(missing_ok=True)
        raise TunerError(f"data: downloaded {target.name} has MD5 {digest.hexdigest()}, expected {md5}. The download is corrupt; run again.")
    shutil.move(partial.name, target)
    return target


def _find(settings: Mapping[str, Any]) -> Path:
    """Locate the data; a missing MedMNIST file with a known record is downloaded into the first data folder."""
    file_name = f"{settings.get('name')}.npz"
    if settings.get("path") or file_name not in MEDMNIST_FILES:
        return locate(settings, file_name)
    try:
        return locate(settings, file_name)
    except TunerError:
        url, md5 = settings.get("url") or MEDMNIST_FILES[file_name][0], MEDMNIST_FILES[file_name][1]
        return download(url, md5, data_dirs(settings)[0] / file_name)


def _from_npz(path: Path, settings: Mapping[str, Any]) -> Dataset:
    try:
        with np.load(path) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise TunerError(f"data.path: '{path}' lacks {', '.join(missing)}; a MedMNIST file has {', '.join(NPZ_KEYS)}.")
            arrays = {key: archive[key] for key in NPZ_KEYS}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise TunerError(f"data.path: cannot read '{path}' as a .npz archive ({error}). Give a MedMNIST-format .npz file.") from None

    labels = {split: arrays[f"{split}_labels"].reshape(-1).astype(np.int64) for split in ("train", "val", "test")}
    n_classes = int(max(labels[split].max() for split in labels)) + 1
    _check_classes(labels["train"], path)
    images = {split: _to_nchw(arrays[f"{split}_images"]) for split in ("train", "val", "test")}
    digest = fingerprint(np.concatenate([images[s].reshape(len(images[s]), -1) for s in images]), np.concatenate(list(labels.values())), {"file": path.name})
    return _normalise(path.stem, images, labels, n_classes, settings, digest, classes=())


def _from_folder(path: Path, settings: Mapping[str, Any]) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    classes = sorted(d.name for d in path.iterdir() if d.is_dir())
    if len(classes) < 2:
        raise TunerError(f"data.path: '{path}' has {len(classes)} class subfolders; an image folder needs one subfolder per class, at least 2.")
    size = int(settings.get("size", 28))
    channels = settings.get("channels")
    pictures, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(f for f in (path / name).rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        for file in files:
            try:
                with Image.open(file) as image:
                    if channels is None:
                        channels = 1 if image.mode in ("L", "I", "I;16", "1") else 3
                    converted = image.convert("L" if channels == 1 else "RGB").resize((size, size), Image.BILINEAR)
                    pictures.append(np.asarray(converted, dtype=np.uint8))
            except (UnidentifiedImageError, OSError) as error:
                raise TunerError(f"data.path: cannot read image '{file}' ({error}). Remove it or convert it to PNG or JPEG.") from None
            labels.append(label)
    if not pictures:
        raise TunerError(f"data.path: '{path}' has no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in its class subfolders.")
    all_labels = np.asarray(labels, dtype=np.int64)
    _check_classes(all_labels, path)
    stacked = _to_nchw(np.stack(pictures))
    split = split_settings(settings)
    indices = np.arange(len(all_labels))
    try:
        rest, test = train_test_split(indices, test_size=split["test_fraction"], stratify=all_labels, random_state=split["split_seed"])
        train, val = train_test_split(rest, test_size=split["val_fraction"] / (1 - split["test_fraction"]), stratify=all_labels[rest], random_state=split["split_seed"])
    except ValueError as error:
        raise TunerError(f"data.path: too few images per class in '{path}' for a stratified split ({error}). Add images or lower data.val_fraction and data.test_fraction.") from None
    images = {"train": stacked[train], "val": stacked[val], "test": stacked[test]}
    split_labels = {"train": all_labels[train], "val": all_labels[val], "test": all_labels[test]}
    digest = fingerprint(stacked.reshape(len(stacked), -1), all_labels, split)
    return _normalise(path.name, images, split_labels, len(classes), settings, digest, classes=tuple(classes))


def _normalise(name, images, labels, n_classes, settings, digest, classes) -> Dataset:
    """Scale to [0, 1], resize to data.size, standardise per channel with train statistics."""
    tensors = {split: torch.from_numpy(array).float().div_(255.0) for split, array in images.items()}
    size = settings.get("size")
    if size is not None and tensors["train"].shape[-1] != int(size):
        tensors = {split: F.interpolate(t, size=(int(size), int(size)), mode="bilinear", align_corners=False) for split, t in tensors.items()}
    channels = settings.get("channels")
    if channels is not None and int(channels) != tensors["train"].shape[1]:
        tensors = {split: _convert_channels(t, int(channels)) for split, t in tensors.items()}
    mean = tensors["train"].mean(dim=(0, 2, 3), keepdim=True)
    std = tensors["train"].std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    splits = {split: Split(((t - mean) / std).contiguous(), torch.from_numpy(labels[split])) for split, t in tensors.items()}
    return Dataset(
        name=name, train=splits["train"], val=splits["val"], test=splits["test"], n_classes=n_classes,
        fingerprint=digest, classes=classes, info={"image_shape": tuple(splits["train"].x.shape[1:])},
    )


def _to_nchw(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3:
        return array[:, None, :, :]
    if array.ndim == 4 and array.shape[-1] in (1, 3):
        return np.ascontiguousarray(array.transpose(0, 3, 1, 2))
    raise TunerError(f"data: images must have shape (N, H, W) or (N, H, W, C) with C of 1 or 3; got {array.shape}.")


def _convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    if channels == 1:
        return images.mean(dim=1, keepdim=True)
    return images.expand(-1, 3, -1, -1).contiguous()


def _check_classes(labels: np.ndarray, path: Path) -> None:
    if len(np.unique(labels)) < 2:
        raise TunerError(f"data: '{path}' has one class only ({int(labels[0])}) in its training labels; a classifier needs at least 2.")
