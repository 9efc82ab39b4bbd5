"""A real browser: JupyterLab runs notebook 01 in headless Chromium; the slice viewer redraws.

The papermill tests prove the notebooks execute; this one proves what a student sees. It
starts JupyterLab on 127.0.0.1 (a free port, a token) in a temporary copy of the project's
layout (``notebooks/01_exploration.ipynb`` with its ``profile`` set to ``tiny``, three
small synthetic cases in ``data/synthetic``, so the notebook's defaults resolve), opens the
notebook in headless Chromium through Playwright, runs Run > Run All Cells, waits (bounded)
for the kernel to be idle, and checks that no cell shows an error, that every figure is an
inline image, that the slice viewer is a live widget and that moving its slice slider (with
the keyboard, then with the mouse) redraws its picture. A screenshot goes to the test's tmp
folder (``lab.png``; ``viewer_after_run.png`` and ``viewer.png``, the viewer before and
after its slider moved) with ``outputs.json``, what each cell showed.

Run it with ``pytest -m browser``. It skips, with the reason, where Playwright (a dev
dependency) or a Chromium binary is missing: ``apt-get install chromium`` (``.ci/run`` does
so as root), or point ``BRATS_CHROMIUM`` at a Chromium or Chrome binary.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from brats_utils.notebooks.runner import NOTEBOOK_DIR, load_profile
from brats_utils.viz.widgets import VIEWER_CLASS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = "01_exploration.ipynb"
STDERR = "application/vnd.jupyter.stderr"  # stderr streams and errors, in the page
CASES = 3
#: Chromium as root on a machine without a network: no sandbox, no GPU, no calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Seconds: the server's start, the kernel's start, Run All, one redraw.
SERVER_START, KERNEL_START, RUN_ALL, REDRAW = 90, 120, 100, 30


def _chromium(playwright_chromium) -> str | None:
    """A Chromium binary: $BRATS_CHROMIUM, one on PATH, or Playwright's own if installed."""
    candidates = [os.environ.get("BRATS_CHROMIUM", "")]
    candidates += [shutil.which(n) or "" for n in ("chromium", "chromium-browser", "chrome")]
    try:
        candidates.append(playwright_chromium.executable_path)
    except Exception:  # noqa: BLE001 - no browser of its own: that is fine
        pass
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str, token: str, timeout: float = 5.0):
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


@pytest.fixture
def lab_layout(tmp_path) -> Path:
    """``tmp/lab/{notebooks/01_exploration.ipynb, data/synthetic/}``; profile ``tiny``."""
    from brats_utils.data.synth import write_synthetic_dataset

    root = tmp_path / "lab"
    (root / "notebooks").mkdir(parents=True)
    tiny = load_profile("tiny")  # small volumes, as the tiny profile draws them
    write_synthetic_dataset(root / "data" / "synthetic", CASES, tiny.synthetic_seed,
                            shape=tiny.synthetic_shape, progress=False)  # fmt: skip
    nb = nbformat.read(NOTEBOOK_DIR / NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    line = 'profile: str = "auto"'
    assert line in cell.source, "the parameter cell no longer reads as this test expects"
    cell.source = cell.source.replace(line, 'profile: str = "tiny"')
    nbformat.write(nb, root / "notebooks" / NOTEBOOK)
    return root


@pytest.fixture
def lab_server(lab_layout, tmp_path):
    """JupyterLab on 127.0.0.1 in ``lab_layout/notebooks``: ``(base url, token)``.

    Its configuration, data and runtime folders are temporary (no user settings, no
    announcements); it is stopped, its kernels first, whatever the test does.
    """
    port, token = _free_port(), secrets.token_hex(16)
    home = tmp_path / "jupyter"
    labconfig = home / "config" / "labconfig"
    labconfig.mkdir(parents=True)
    disabled = {"@jupyterlab/apputils-extension:announcements": True}
    (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": disabled}))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={lab_layout / 'notebooks'}",
        "--ServerApp.terminals_enabled=False",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly", "--ServerApp.allow_root=True",
    ]  # fmt: skip
    log_path = tmp_path / "jupyterlab.log"
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            command, cwd=lab_layout / "notebooks", env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + SERVER_START
            while True:
                if server.poll() is not None:
                    pytest.fail(f"JupyterLab exited ({server.returncode}):\n{log_path.read_text()}")
                try:
                    _get_json(f"{base}/api/status", token, timeout=2)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        log_text = log_path.read_text()
                        pytest.fail(f"JupyterLab not up in {SERVER_START} s:\n{log_text}")
                    time.sleep(0.5)
            yield base, token
        finally:
            try:
                for kernel in _get_json(f"{base}/api/kernels", token):
                    request = urllib.request.Request(
                        f"{base}/api/kernels/{kernel['id']}",
                        method="DELETE",
                        headers={"Authorization": f"token {token}"},
                    )
                    urllib.request.urlopen(request, timeout=10).close()
            except OSError:
                pass  # the server is gone already; SIGTERM below still stops what is left
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)


@pytest.fixture
def chromium_page(tmp_path):
    """A Playwright page of headless Chromium; skips where Playwright or Chromium is missing."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    with sync_api.sync_playwright() as playwright:
        executable = _chromium(playwright.chromium)
        if executable is None:
            pytest.skip(
                "no Chromium found: apt-get install chromium, or set BRATS_CHROMIUM to a "
                "Chromium/Chrome binary"
            )
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


#: Run All is over when the kernel is idle, no cell waits ([*]) and the first one ran; an
#: error stops the run and leaves the cells after it blank ([ ]).
RUN_ALL_DONE = """() => {
  const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
  if (!indicator || indicator.dataset.status !== 'idle') return false;
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
    .map(p => p.textContent.trim());
  return prompts.length > 0 && !prompts.some(p => p.includes('*'))
    && /^\\[\\d+\\]:$/.test(prompts[0]);
}"""

#: Per code cell: its source, prompt, and each output's MIME type and text (for the report).
CELL_OUTPUTS = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')].map(cell => ({
  source: cell.querySelector('.jp-InputArea-editor').textContent,
  prompt: cell.querySelector('.jp-InputArea-prompt').textContent.trim(),
  outputs: [...cell.querySelectorAll('.jp-OutputArea-child > .jp-OutputArea-output')].map(o => ({
    mime: o.dataset.mimeType || '', text: o.textContent.slice(0, 400),
    images: o.querySelectorAll('img').length, widget: !!o.querySelector('.jupyter-widgets'),
  })),
}))"""


def _wait_for_kernel(base: str, token: str) -> None:
    """Until the notebook's session has a kernel that is idle with the page connected."""
    deadline, state = time.monotonic() + KERNEL_START, None
    while time.monotonic() < deadline:
        sessions = _get_json(f"{base}/api/sessions", token)
        kernels = [s["kernel"] for s in sessions if s["path"].endswith(NOTEBOOK) and s["kernel"]]
        state = kernels
        if kernels and kernels[0]["execution_state"] == "idle" and kernels[0]["connections"]:
            return
        time.sleep(0.5)
    pytest.fail(f"the notebook's kernel was not ready in {KERNEL_START} s: {state}")


def _save(page, tmp_path) -> nbformat.NotebookNode:
    """File > Save Notebook; the notebook as the server wrote it (outputs included)."""
    path = tmp_path / "lab" / "notebooks" / NOTEBOOK
    before = path.stat().st_mtime_ns
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^File$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Save( Notebook)?$")).click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.stat().st_mtime_ns != before:
            page.wait_for_timeout(500)  # the server writes it atomically; let it finish
            return nbformat.read(path, as_version=4)
        page.wait_for_timeout(250)
    pytest.fail("File > Save Notebook did not write the executed notebook within 30 s")


def _picture(image) -> str:
    """sha256 of the PNG an ``<img>`` shows (its ``data:`` URL decoded)."""
    source = image.get_attribute("src") or ""
    assert source.startswith("data:image/png;base64,"), source[:60]
    png = base64.b64decode(source.split(",", 1)[1])
    assert png.startswith(b"\x89PNG"), "the viewer's picture is not a PNG"
    return hashlib.sha256(png).hexdigest()


def _wait_for_new_picture(page, image, before: str) -> str:
    deadline = time.monotonic() + REDRAW
    while time.monotonic() < deadline:
        now = _picture(image)
        if now != before:
            return now
        page.wait_for_timeout(250)
    pytest.fail(f"the viewer's picture did not change within {REDRAW} s of moving the slider")


def test_notebook_01_runs_in_jupyterlab_and_its_viewer_redraws(chromium_page, lab_server, tmp_path):
    base, token = lab_server
    page = chromium_page
    page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}", wait_until="domcontentloaded")
    page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=KERNEL_START * 1000)
    _wait_for_kernel(base, token)
    page.wait_for_selector(
        '.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=KERNEL_START * 1000
    )

    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    # the page must not ask for a kernel: the notebook's own (python3) runs it
    page.wait_for_timeout(1000)
    assert not page.locator(".jp-Dialog").is_visible(), page.locator(".jp-Dialog").inner_text()
    try:
        page.wait_for_function(RUN_ALL_DONE, timeout=RUN_ALL * 1000, polling=500)
    except Exception:
        page.screenshot(path=tmp_path / "failure.png")
        state = page.evaluate(
            "() => [document.querySelector('.jp-Notebook-ExecutionIndicator')?.outerHTML,"
            " [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]"
            ".map(p => p.textContent)]"
        )
        pytest.fail(f"Run All not done in {RUN_ALL} s (see {tmp_path}/failure.png): {state}")

    cells = page.evaluate(CELL_OUTPUTS)
    (tmp_path / "outputs.json").write_text(json.dumps(cells, indent=1))
    saved = _save(page, tmp_path)
    errors = [
        f"{o.ename}: {o.evalue}"
        for c in saved.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert not errors, errors
    shown = [  # what the page shows as an error: a traceback in a stderr-type output
        o["text"][:300]
        for c in cells
        for o in c["outputs"]
        if o["mime"] == STDERR and re.search(r"Traceback|^\w*(Error|Exception)\b", o["text"], re.M)
    ]
    assert not shown, shown
    sources = [c.source for c in saved.cells if c.cell_type == "code"]  # with their newlines
    assert len(sources) == len(cells)
    not_run = [
        s[:60]
        for s, c in zip(sources, cells, strict=True)
        if not re.fullmatch(r"\[\d+\]:", c["prompt"])
    ]
    assert not not_run, f"cells that did not run: {not_run}"
    for source, cell in zip(
        sources, cells, strict=True
    ):  # every figure drawn in a cell is an inline image
        if re.search(r"\bdisplay\((plot_\w+|viewer)\b", source):
            assert any(o["images"] for o in cell["outputs"]), source[:80]

    # the viewer: a live widget (rendered controls, not the text fallback) under its picture
    viewer_cell = page.locator(".jp-CodeCell", has=page.locator(f".{VIEWER_CLASS}"))
    assert viewer_cell.count() == 1
    controls = viewer_cell.locator(f".jupyter-widgets.{VIEWER_CLASS}")
    controls.scroll_into_view_if_needed()
    viewer_cell.screenshot(path=tmp_path / "viewer_after_run.png")
    assert controls.locator(".widget-slider").count() == 2  # slice and opacity
    pictures = viewer_cell.locator("img:visible")
    assert pictures.count() == 1, "the viewer shows one picture, above its controls"
    picture = pictures.first
    assert picture.evaluate(
        "(img, controls) => img.compareDocumentPosition(controls) & 4", controls.element_handle()
    ), "the picture is not above the controls"
    slider = controls.locator(".widget-slider").filter(
        has=page.locator(".widget-label", has_text=re.compile(r"^slice$"))
    )
    readout = slider.locator(".widget-readout")
    start = int(readout.inner_text())
    first = _picture(picture)

    # the keyboard: one step right redraws
    handle = slider.locator(".noUi-handle")
    handle.focus()
    page.keyboard.press("ArrowRight")
    second = _wait_for_new_picture(page, picture, first)
    assert int(readout.inner_text()) == start + 1

    # the mouse: drag the handle to the left redraws again
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] - 20, box["y"] + box["height"] / 2, steps=6)
    page.mouse.up()
    _wait_for_new_picture(page, picture, second)
    assert 0 < int(readout.inner_text()) < start + 1

    viewer_cell.scroll_into_view_if_needed()
    page.screenshot(path=tmp_path / "lab.png")
    viewer_cell.screenshot(path=tmp_path / "viewer.png")
