"""The HTML report in a real browser (headless Chromium): every image loads, key numbers
are on the page, and a screenshot is saved to test-artifacts/.

Chromium comes from the Debian packages ``chromium`` and ``chromium-driver``. Where it is
absent the test skips with the reason, except under ``CI=true``, where it fails."""

import html as _html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import nir
import numpy as np
import pytest

from neurodeploy.cli import main
from neurodeploy.measure.report import fmt_si

from .helpers import chain, f32, lif

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-extensions", "--mute-audio"]


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    reason = "headless Chromium not found (install the Debian packages chromium and chromium-driver)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " — required under CI=true")
    pytest.skip(reason)


def _browse(exe, tmp_path, url, *extra, timeout=120):
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    proc = subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *extra, url], capture_output=True, text=True, timeout=timeout)
    return proc


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("browser")
    rng = np.random.default_rng(3)
    model = d / "tiny.nir"
    nir.write(str(model), chain(nir.Input(np.array([5])), nir.Linear(weight=f32(rng.normal(0.8, 0.5, (8, 5)))), lif(8, tau=0.004, thr=0.5),
                                nir.Linear(weight=f32(rng.normal(0.5, 0.6, (3, 8)))), lif(3, tau=0.004, thr=0.5), nir.Output(np.array([3])), dt=1e-3))
    x = (rng.random((6, 15, 5)) < 0.5).astype(np.float32)
    data = d / "x.npz"
    np.savez(data, x=x, y=np.array([0, 1, 2, 0, 1, 2]))
    out = d / "report"
    rc = main(["--quiet", "compare", str(model), "--targets", "reference,rram,loihi2-emu", "--input", str(data), "-o", str(out)])
    assert rc == 0
    return out


def test_report_renders_in_chromium(report_dir, tmp_path):
    exe = _chromium()
    page = report_dir / "report.html"
    text = page.read_text()
    n_img = text.count("<img ")
    assert n_img >= 5
    url = page.resolve().as_uri()
    proc = _browse(exe, tmp_path, url, "--virtual-time-budget=10000", "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    m = re.search(r'<pre id="img-check" data-checked="(\d+)">(.*?)</pre>', dom, re.S)
    assert m, "the page's image-check script did not run"
    assert int(m.group(1)) == n_img
    widths = [int(w) for w in re.findall(r"naturalWidth=(\d+)", m.group(2))]
    assert len(widths) == n_img and all(w > 0 for w in widths), m.group(2)
    assert len(re.findall(r'data-natural-width="[1-9]\d*"', dom)) == n_img
    # key numbers of report.json appear on the rendered page
    rep = json.loads((report_dir / "report.json").read_text())
    ref = next(e for e in rep["targets"] if e["target"] == "reference")
    visible = _html.unescape(dom)
    assert f"{100 * ref['metrics']['accuracy']:.2f} %" in visible
    assert fmt_si(ref["energy"]["per_inference_J"], "J") in visible
    for e in rep["targets"]:
        assert e["target"] in visible
    # screenshot
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    proc = _browse(exe, tmp_path, url, "--window-size=1200,4000", "--hide-scrollbars", "--virtual-time-budget=10000", f"--screenshot={shot}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_broken_image_is_detected(report_dir, tmp_path):
    """The check itself can fail: a corrupted embedded PNG reports naturalWidth 0."""
    exe = _chromium()
    text = (report_dir / "report.html").read_text()
    broken = tmp_path / "broken.html"
    broken.write_text(text.replace("data:image/png;base64,iVBOR", "data:image/png;base64,AAAAA", 1))
    proc = _browse(exe, tmp_path, broken.resolve().as_uri(), "--virtual-time-budget=10000", "--dump-dom")
    assert proc.returncode == 0
    widths = [int(w) for w in re.findall(r"naturalWidth=(\d+)", proc.stdout)]
    assert 0 in widths
