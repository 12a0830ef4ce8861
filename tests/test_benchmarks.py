"""Smoke runs of the benchmark scripts with tiny budgets, so that they keep working."""

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_throughput_smoke(tmp_path, data_dir):
    out = tmp_path / "throughput.json"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "throughput.py"), "--repeats", "1", "--image-limit", "256",
         "--data-dir", str(data_dir), "--out", str(out)],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [row["case"] for row in rows][:2] == ["tabular (breast cancer MLP)", "x-ray CNN (PneumoniaMNIST)"]
    for row in rows:
        assert set(row["samples_per_s"]) == {"tuner", "plain", "dataloader"}
        assert all(speed > 0 for speed in row["samples_per_s"].values())
    assert "vs plain" in done.stdout
