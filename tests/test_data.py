import hashlib

import torch

from objectives.data import load_breast_cancer


def test_breast_cancer_split_sizes_and_strata():
    data = load_breast_cancer({})
    sizes = (len(data.train), len(data.val), len(data.test))
    assert sizes == (341, 114, 114)
    assert data.n_features == 30
    assert data.n_classes == 2
    # 212 of 569 patients are malignant (the positive class).
    for split in (data.train, data.val, data.test):
        share = split.y.float().mean().item()
        assert abs(share - 212 / 569) < 0.01


def test_scaling_uses_train_statistics_only():
    data = load_breast_cancer({})
    assert torch.allclose(data.train.x.mean(dim=0), torch.zeros(30), atol=1e-5)
    assert not torch.allclose(data.val.x.mean(dim=0), torch.zeros(30), atol=1e-3)


def test_splits_are_disjoint_and_fixed():
    first, second = load_breast_cancer({}), load_breast_cancer({})
    assert torch.equal(first.test.x, second.test.x)
    assert first.fingerprint == second.fingerprint
    rows = {tuple(row.tolist()) for split in (first.train, first.val, first.test) for row in split.x}
    assert len(rows) == 569


def test_split_seed_changes_split_and_fingerprint():
    default, other = load_breast_cancer({}), load_breast_cancer({"split_seed": 1})
    assert not torch.equal(default.test.x, other.test.x)
    assert default.fingerprint != other.fingerprint


def test_without_test_drops_only_test():
    data = load_breast_cancer({})
    trial_view = data.without_test()
    assert trial_view.test is None
    assert torch.equal(trial_view.train.x, data.train.x)


def test_shared_data_checksums(data_dir):
    for line in (data_dir / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((data_dir / name.lstrip("*")).read_bytes()).hexdigest() == digest, name
