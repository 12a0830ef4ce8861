"""Ray clusters and GPU settings: a two-node cluster on this machine, per-trial resources, mixed precision on CPU.

The cluster is two `ray start` nodes with `--node-ip-address=127.0.0.1` and one
CPU each. Where `unshare` may create a mount namespace (root on Linux), the
second node runs with the drivers' folder hidden under an empty tmpfs, so its
trials cannot read anything from the driver's file system.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from conftest import load_only_study
from objectives import training, xray
from objectives.data import Split
from objectives.training import MixedPrecision, fits_on_gpu, train_epoch
from tuner.cli import main
from tuner.cluster import concurrency, local_module_path, ray_address, trials_per_node
from tuner.context import TrialContext
from tuner.errors import TunerError
from tuner.settings import load_settings
from tuner.trainable import make_context, trial_payload

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 180  # `ray start` on 2 busy cores; it returns once the node has joined.
RUN_TIMEOUT_S = 300
NODE_ID = re.compile(r"[0-9a-f]{56}")


@dataclass(frozen=True)
class Cluster:
    address: str
    env: dict[str, str]
    drivers: Path  # Parent of the drivers' working folders, hidden from the second node where the machine allows it.


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _can_hide(folder: Path) -> bool:
    """Return whether a process here may mount a tmpfs over `folder` in a mount namespace of its own."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "sh", "-c", f'mount -t tmpfs tmpfs "{folder}"'], capture_output=True)
    return probe.returncode == 0


def _start_node(args: list[str], env: dict[str, str], hide: Path | None) -> int:
    """Run `ray start` in a new session and return its process group, which contains every process of the node."""
    command = [str(BIN / "ray"), "start", *args, "--disable-usage-stats"]
    if hide is not None:
        command = ["unshare", "--mount", "sh", "-c", f'mount -t tmpfs tmpfs "{hide}" && exec "$@"', "sh", *command]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _stop_node(process.pid)
        raise
    if process.returncode != 0:
        _stop_node(process.pid)
        raise RuntimeError(f"ray start {' '.join(args)} failed:\n{output}")
    return process.pid


def _stop_node(group: int) -> None:
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head and a second node with one CPU, no GPU and a custom resource each, joined by a random token."""
    drivers = tmp_path_factory.mktemp("drivers")
    # Ray's socket paths must stay under 108 characters, so its folder is short.
    ray_dir = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32), RAY_USAGE_STATS_ENABLED="0")
    port = _free_port()
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--num-gpus=0", f"--temp-dir={ray_dir}"]
    hide = drivers if _can_hide(drivers) else None
    groups = []
    try:
        groups.append(_start_node(["--head", f"--port={port}", "--include-dashboard=false", '--resources={"head_node": 1}', *common], env, None))
        groups.append(_start_node([f"--address=127.0.0.1:{port}", '--resources={"second_node": 1}', *common], env, hide))
        yield Cluster(f"127.0.0.1:{port}", env, drivers)
    finally:
        for group in reversed(groups):
            _stop_node(group)
        shutil.rmtree(ray_dir, ignore_errors=True)


def run_tuner(cluster: Cluster, folder: Path, *overrides: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `tuner run` as its own process in `folder`, as a user on the cluster would."""
    folder.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "tuner", "run", *overrides], cwd=folder, env=env or cluster.env,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


# adam_medical's objective, which trials 0 and 1 enter only once both run: each
# node has one CPU, so one of them must run on the other node. Without this,
# Ray Tune may hand a trial to an idle actor of the first node (reuse_actors)
# before the second node's actor has started. Later trials skip the wait,
# because the rendezvous actor ends with the trial process that created it.
RENDEZVOUS = """
import asyncio

import ray

from objectives import tabular


@ray.remote(num_cpus=0)
class Rendezvous:
    def __init__(self, parties):
        self.parties = parties
        self.arrived = 0
        self.everyone = asyncio.Event()

    async def arrive(self):
        self.arrived += 1
        if self.arrived >= self.parties:
            self.everyone.set()
        await self.everyone.wait()


def train(trial):
    if trial.number < 2:
        rendezvous = Rendezvous.options(name="first-two-trials", get_if_exists=True).remote(2)
        ray.get(rendezvous.arrive.remote(), timeout=120)
    return tabular.train(trial)
"""


def test_study_spreads_over_two_nodes(cluster):
    folder = cluster.drivers / "medical"
    folder.mkdir()
    (folder / "rendezvous.py").write_text(RENDEZVOUS)
    done = run_tuner(cluster, folder, "space=adam_medical", "objective=rendezvous:train", "n_trials=4", "max_epochs=2",
                     "pruner=none", f"ray.address={cluster.address}")

    assert done.returncode == 0, done.stderr
    assert "Trials:   4 (4 complete, 0 pruned, 0 failed)" in done.stdout
    study = load_only_study(f"sqlite:///{folder}/results/tuner.db")
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    for trial in trials:
        assert sorted(trial.intermediate_values) == [1, 2]
        assert NODE_ID.fullmatch(trial.user_attrs["node_id"])
        assert trial.user_attrs["node_host"] == socket.gethostname()
        assert "gpu_peak_mib" not in trial.user_attrs
    # Where the second node cannot see this folder, its trials imported
    # rendezvous.py from the copy that Ray shipped (runtime_env py_modules).
    assert len({t.user_attrs["node_id"] for t in trials}) == 2
    best = json.loads((folder / "results" / study.study_name / "best.json").read_text())
    assert best["trial"] == study.best_trial.number
    assert best["value"] == study.best_value


def test_gpu_request_on_cpu_cluster_exits_2(cluster):
    folder = cluster.drivers / "gpu"
    done = run_tuner(cluster, folder, "space=adam_medical", "resources.gpu=0.25", f"ray.address={cluster.address}")

    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        f"error: resources.gpu: 0.25 GPU per trial requested, but the Ray cluster at '{cluster.address}' has no GPUs. "
        "Set resources.gpu=0, or run on a cluster with GPUs."
    )
    assert done.stdout == ""
    assert list(folder.iterdir()) == []


def test_cpu_request_larger_than_any_node_exits_2(cluster):
    folder = cluster.drivers / "cpu"
    done = run_tuner(cluster, folder, "space=adam_medical", "resources.cpu=2", f"ray.address={cluster.address}")

    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        f"error: resources.cpu: 2 CPUs per trial requested, but no node of the Ray cluster at '{cluster.address}' "
        "has more than 1 CPU. Lower resources.cpu."
    )
    assert list(folder.iterdir()) == []


def test_gpu_request_on_this_machine_exits_2(workdir, capsys):
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0

    assert main(["run", "space=adam_medical", "resources.gpu=64"]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        f"error: resources.gpu: 64 GPU per trial requested, but this machine has {gpus} GPUs. "
        "Set resources.gpu=0 or run on a machine or cluster with GPUs.\n"
    )
    assert captured.out == ""
    assert list(workdir.iterdir()) == []


def test_ray_client_address_exits_2(workdir, capsys):
    assert main(["run", "space=adam_medical", "ray.address=ray://127.0.0.1:10001"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: ray.address: 'ray://127.0.0.1:10001' is a Ray Client address, which tuner cannot use: "
    )
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize("override, expected", [
    ("resources.gpu=-0.5", "must be >= 0: a fraction of one GPU such as 0.25, or a whole number of GPUs per trial; got -0.5."),
    ("resources.gpu=1.5", "must be >= 0: a fraction of one GPU such as 0.25, or a whole number of GPUs per trial; got 1.5."),
    ("resources.gpu=many", "must be >= 0: a fraction of one GPU such as 0.25, or a whole number of GPUs per trial; got 'many'."),
    ("resources.cpu=0", "must be a number > 0 (CPUs per trial); got 0."),
    ("amp=fp32", "must be one of bf16, fp16, none; got 'fp32'."),
    ("amp=fp16", "fp16 needs a GPU, but resources.gpu is 0. Set resources.gpu, or use amp=bf16 on CPUs."),
    ("channels_last=yes please", "must be true or false; got 'yes please'."),
])
def test_invalid_resource_and_precision_settings(override, expected):
    with pytest.raises(TunerError) as caught:
        load_settings(["space=adam_xray", override])
    assert caught.value.problems == [f"override {override}: {expected}"]


@pytest.mark.parametrize("override", ["amp=bf16", "channels_last=true"])
def test_precision_settings_rejected_for_mlp(override):
    key = override.split("=")[0]
    with pytest.raises(TunerError) as caught:
        load_settings(["space=adam_medical", override])
    assert caught.value.problems == [
        f"override {override}: applies to the CNN of image_classifier and to your own objectives; "
        f"the objective 'tabular_classifier' ignores it. Drop {key}."
    ]


def test_valid_resources_and_precision_settings():
    settings = load_settings(["space=adam_xray", "resources.gpu=0.25", "resources.cpu=2", "amp=fp16", "channels_last=true"])
    assert (settings.gpu, settings.cpu, settings.amp, settings.channels_last) == (0.25, 2.0, "fp16", True)
    assert load_settings(["space=adam_xray", "resources.gpu=2"]).gpu == 2.0
    defaults = load_settings(["space=adam_xray"])
    assert (defaults.gpu, defaults.amp, defaults.channels_last) == (0.0, "none", False)


def test_ray_address_from_setting_or_environment(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert ray_address(load_settings(["space=adam_medical"])) is None
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert ray_address(load_settings(["space=adam_medical"])) == "10.0.0.5:6379"
    assert ray_address(load_settings(["space=adam_medical", "ray.address=auto"])) == "auto"


def test_payload_carries_precision_to_context():
    settings = load_settings(["space=adam_xray", "amp=bf16", "channels_last=true"])
    payload = trial_payload(settings, import_paths=[])
    ctx = make_context({"lr": 0.01}, None, number=3, payload=payload)

    assert (payload["amp"], payload["channels_last"]) == ("bf16", True)
    assert (ctx.amp, ctx.channels_last, ctx.gpu, ctx.device, ctx.seed) == ("bf16", True, 0.0, torch.device("cpu"), 3)


@pytest.mark.parametrize("resources, cpu, gpu, expected", [
    ({"CPU": 8}, 1, 0, 8),
    ({"CPU": 8}, 3, 0, 2),
    ({"CPU": 1}, 0.5, 0, 2),
    ({"CPU": 8, "GPU": 1}, 1, 0.25, 4),
    ({"CPU": 8, "GPU": 1}, 1, 0.1, 8),
    ({"CPU": 16, "GPU": 2}, 1, 0.4, 4),  # A fraction must fit within one GPU: 2 per GPU, not 5 in all.
    ({"CPU": 16, "GPU": 4}, 1, 2, 2),
    ({"CPU": 8}, 1, 0.5, 0),
    ({"CPU": 8, "GPU": 1}, 1, 2, 0),
])
def test_trials_per_node(resources, cpu, gpu, expected):
    assert trials_per_node(resources, cpu, gpu) == expected


def test_concurrency_counts_each_node():
    settings = load_settings(["space=adam_medical", "resources.cpu=2", "n_trials=40"])
    # Three CPUs in all, but no node can hold two trials' worth on its own.
    assert concurrency(settings, [{"CPU": 3}, {"CPU": 1}], "the test cluster") == 1
    assert concurrency(settings, [{"CPU": 4}, {"CPU": 2}], "the test cluster") == 3
    assert concurrency(replace(settings, max_concurrent=2), [{"CPU": 4}, {"CPU": 2}], "the test cluster") == 2
    assert concurrency(replace(settings, n_trials=1), [{"CPU": 4}, {"CPU": 2}], "the test cluster") == 1


def test_concurrency_names_each_shortfall():
    settings = load_settings(["space=adam_xray", "resources.cpu=4", "resources.gpu=2"])
    with pytest.raises(TunerError) as caught:
        concurrency(settings, [{"CPU": 2, "GPU": 1}, {"CPU": 3}], "the test cluster")
    assert caught.value.problems == [
        "resources.gpu: 2 GPUs per trial requested, but no node of the test cluster has more than 1 GPU. Lower resources.gpu.",
        "resources.cpu: 4 CPUs per trial requested, but no node of the test cluster has more than 3 CPUs. Lower resources.cpu.",
    ]


def test_local_module_path_ships_only_working_directory_modules(tmp_path, monkeypatch):
    (tmp_path / "single.py").write_text("def train(trial):\n    pass\n")
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "__init__.py").write_text("")
    (tmp_path / "bundle" / "objective.py").write_text("def train(trial):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    assert local_module_path("single:train", tmp_path) == tmp_path / "single.py"
    assert local_module_path("bundle.objective:train", tmp_path) == tmp_path / "bundle"
    assert local_module_path("single:train", tmp_path / "bundle") is None
    assert local_module_path("objectives.xray:train", Path(__file__).resolve().parents[1]) is None
    assert local_module_path("optuna.study:create_study", Path(optuna.__file__).resolve().parents[2]) is None


def test_fits_on_gpu_uses_the_trials_share():
    gib = 2**30
    assert fits_on_gpu(2 * gib, free=80 * gib, total=80 * gib, gpu=1)
    assert not fits_on_gpu(6 * gib, free=80 * gib, total=80 * gib, gpu=0.125)  # Its share is 10 GiB, half of it for data.
    assert fits_on_gpu(5 * gib, free=80 * gib, total=80 * gib, gpu=0.125)
    assert not fits_on_gpu(5 * gib, free=8 * gib, total=80 * gib, gpu=1)  # Other processes hold the rest.


def test_batches_copied_from_host_train_as_resident_data():
    data = Split(torch.randn(96, 5), torch.arange(96) % 2)
    losses = []
    for device in (None, torch.device("cpu")):
        torch.manual_seed(0)
        model = torch.nn.Linear(5, 2)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        generator = torch.Generator().manual_seed(1)
        losses.append([train_epoch(model, optimizer, torch.nn.CrossEntropyLoss(), data, 32, generator, device=device) for _ in range(3)])
    assert losses[0] == losses[1]


def test_fp16_on_cpu_falls_back_to_float32(monkeypatch, caplog):
    monkeypatch.setattr(training, "_warned", set())
    precision = MixedPrecision("fp16", torch.device("cpu"))

    assert precision.dtype is None
    assert precision.scaler is None
    assert caplog.messages == ["amp=fp16 needs a CUDA device, but this model trains on cpu; training in float32 instead"]
    assert MixedPrecision("bf16", torch.device("cpu")).dtype is torch.bfloat16


def small_xray(data_dir: Path):
    from objectives.images import load_images

    data = load_images({"name": "pneumoniamnist", "dir": str(data_dir)})
    return replace(data, train=Split(data.train.x[:384], data.train.y[:384]), val=Split(data.val.x[:192], data.val.y[:192]), test=None)


def train_xray(monkeypatch, data, amp: str, channels_last: bool):
    """Train the CNN for 2 epochs on CPU; return the reports, what its second convolution saw and produced, and the model.

    The second convolution has 8 input channels, where channels-last and contiguous layouts differ.
    """
    records, seen = [], []
    ctx = TrialContext(params={"lr": 3e-3, "batch_size": 64, "depth": 2, "width": 8}, data=data, number=0, seed=0,
                       max_epochs=2, metric="val_auc", device=torch.device("cpu"), amp=amp, channels_last=channels_last,
                       _sink=records.append)
    build = xray.cnn

    def cnn_with_probe(*args, **kwargs):
        model = build(*args, **kwargs)
        model[4].register_forward_hook(lambda module, inputs, output: seen.append(
            (output.dtype, inputs[0].is_contiguous(memory_format=torch.channels_last))))
        return model

    monkeypatch.setattr(xray, "cnn", cnn_with_probe)
    torch.manual_seed(0)
    model = xray.train(ctx)
    monkeypatch.setattr(xray, "cnn", build)
    return records, seen, model


def test_cnn_bf16_channels_last_on_cpu(data_dir, monkeypatch):
    data = small_xray(data_dir)
    plain, plain_seen, _ = train_xray(monkeypatch, data, "none", False)
    mixed, mixed_seen, model = train_xray(monkeypatch, data, "bf16", True)

    assert [r["epoch"] for r in mixed] == [1, 2]
    assert set(plain_seen) == {(torch.float32, False)}
    assert set(mixed_seen) == {(torch.bfloat16, True)}
    assert isinstance(model[4], torch.nn.Conv2d)
    assert model[4].weight.is_contiguous(memory_format=torch.channels_last)
    assert model[4].weight.dtype == torch.float32  # Autocast keeps the weights in float32.
    for before, after in zip(plain, mixed):
        assert abs(before["train_loss"] - after["train_loss"]) < 0.02
        assert abs(before["val_loss"] - after["val_loss"]) < 0.02


def test_cnn_channels_last_float32_matches_contiguous(data_dir, monkeypatch):
    data = small_xray(data_dir)
    plain, _, _ = train_xray(monkeypatch, data, "none", False)
    channels_last, seen, _ = train_xray(monkeypatch, data, "none", True)

    assert set(seen) == {(torch.float32, True)}
    for before, after in zip(plain, channels_last):
        assert after["val_loss"] == pytest.approx(before["val_loss"], abs=1e-4)
