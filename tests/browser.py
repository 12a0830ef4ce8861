"""Open a report in headless Chromium: collect JavaScript errors, count rendered figures, save a screenshot."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Parallel coordinates draw with WebGL; without a GPU, Chromium needs this flag to use its software renderer.
    "--enable-unsafe-swiftshader",
    "--virtual-time-budget=20000",
]
# Runs before the report's own scripts and writes every uncaught error or console.error into the page.
_ERROR_TRAP = """<script>
(function () {
  function record(text) {
    var node = document.createElement("pre");
    node.className = "js-error";
    node.textContent = text;
    (document.body || document.documentElement).appendChild(node);
  }
  window.addEventListener("error", function (event) { record("uncaught: " + event.message); });
  window.addEventListener("unhandledrejection", function (event) { record("unhandled rejection: " + event.reason); });
  var original = console.error;
  console.error = function () { record("console.error: " + Array.prototype.join.call(arguments, " ")); original.apply(console, arguments); };
})();
</script>"""
# Screenshots of the browser tests, for a person to look at after the run (TUNER_TEST_OUTPUT sets the folder).
SCREENSHOT_DIR = Path(os.environ.get("TUNER_TEST_OUTPUT", Path(__file__).resolve().parents[1] / "test-output"))


@dataclass(frozen=True)
class Rendered:
    """A page as Chromium loaded it: JavaScript errors, figures, figures drawn, and the screenshot."""

    errors: list[str]
    figures: int
    rendered: int
    screenshot: Path


def find_chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("TUNER_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium not found; install Debian's chromium package")
        pytest.skip("chromium not found; install Debian's chromium package to run browser tests")
    return path


def render(chromium: str, report: Path, workdir: Path, name: str) -> Rendered:
    """Load a copy of `report` with the error trap, dump its DOM and screenshot it."""
    trapped = workdir / f"{name}-trapped.html"
    trapped.write_text(report.read_text(encoding="utf-8").replace("<head>", "<head>" + _ERROR_TRAP, 1), encoding="utf-8")
    browser = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={workdir / 'chromium'}"]
    dom = subprocess.run([*browser, "--window-size=1280,900", "--dump-dom", trapped.as_uri()], capture_output=True, text=True, check=True).stdout
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    screenshot = SCREENSHOT_DIR / f"{name}.png"
    subprocess.run([*browser, "--window-size=1280,6000", f"--screenshot={screenshot}", report.as_uri()], capture_output=True, check=True)
    errors = re.findall(r'<pre class="js-error">(.*?)</pre>', dom, flags=re.S)
    # Each figure's div runs up to the next one; Plotly has drawn it when the div contains its SVG layers.
    parts = re.split(r'(?=<div id="figure-\d+" class="plotly-graph-div)', dom)[1:]
    rendered = sum('class="main-svg"' in part for part in parts)
    return Rendered(errors, len(parts), rendered, screenshot)


def script_sources(page: str) -> list[str]:
    """Return the src of every <script> tag of a page."""
    return re.findall(r"<script[^>]*\bsrc\s*=\s*[\"']?([^\"' >]+)", page, flags=re.I)
