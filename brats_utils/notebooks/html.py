"""Executed notebooks rendered to HTML pages that read offline (``--html``)."""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Mapping
from pathlib import Path

from brats_utils.errors import BratsError
from brats_utils.files import atomic_path, read_json

__all__ = ["render_html"]


def render_html(notebooks_dir: Path | str, html_dir: Path | str) -> list[Path]:
    """Render the executed notebooks to whole pages in ``html_dir``; returns them, index last."""
    import nbformat
    from nbconvert import HTMLExporter

    notebooks_dir, html_dir = Path(notebooks_dir), Path(html_dir)
    executed = sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if not executed:
        raise BratsError(f"no executed notebook (NN_*.ipynb) in {notebooks_dir}")
    summary_path = notebooks_dir / "run_summary.json"
    summary = read_json(summary_path, "run summary") if summary_path.is_file() else {}
    html_dir.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    pages, styles = {}, {}
    shown_as = _machine_paths(summary, notebooks_dir.parent)
    for path in executed:
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                cell.source = _formulas_as_svg(cell.source)
        body, _ = exporter.from_notebook_node(notebook)
        for folder, name in shown_as.items():
            body = body.replace(folder, name)
        pages[path.stem], page_styles = _without_styles(body)
        styles.update(dict.fromkeys(page_styles))  # in order of first appearance
    written = [_write(html_dir / "notebook.css", "\n".join(styles))]
    for stem, body in pages.items():
        written.append(_write(html_dir / f"{stem}.html", body))
    index = _write(html_dir / "index.html", _index_page("brats-unet results", written[1:], summary))
    return [*written, index]


_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.S)
_LINK = '<link rel="stylesheet" href="notebook.css">'


def _without_styles(body: str) -> tuple[str, list[str]]:
    found = _STYLE.findall(body)
    if not found:
        return body, []
    first = _STYLE.search(body).start()
    body = body[:first] + _LINK + _STYLE.sub("", body[first:])
    return body, found


_FORMULA = re.compile(r"\$([^$\s][^$]*?)\$")
_CODE = re.compile(r"(```.*?```|`[^`]*`)", re.S)


def _formulas_as_svg(markdown: str) -> str:
    """A formula mathtext cannot draw stays as text; code is left alone."""
    parts = _CODE.split(markdown)
    parts[::2] = [_FORMULA.sub(_svg_image, part) for part in parts[::2]]
    return "".join(parts)


def _svg_image(match: re.Match) -> str:
    from matplotlib import mathtext

    formula, buffer = " ".join(match.group(1).split()), io.BytesIO()
    try:
        mathtext.math_to_image(f"${formula}$", buffer, format="svg")
    except ValueError:
        return match.group(0)
    data = base64.b64encode(buffer.getvalue()).decode()
    alt = html.escape(formula, quote=True)
    return f'<img alt="{alt}" src="data:image/svg+xml;base64,{data}" style="vertical-align:middle">'


def _machine_paths(summary: Mapping, out_dir: Path) -> dict[str, str]:
    project = Path(__file__).resolve().parents[2]
    shown_as = {f"{project}/": ""}
    for folder, name in ((summary.get("data_dir"), "DATA_DIR"), (out_dir, "OUT_DIR")):
        folder = Path(str(folder or "")).absolute()
        if folder.parent != folder and not folder.is_relative_to(project):
            shown_as[str(folder)] = name
    return dict(sorted(shown_as.items(), key=lambda item: -len(item[0])))


def _data_description(data_dir: Path) -> str:
    """``"16 cases of brats2018_sample"`` (the folder linked cases lie in), never a path."""
    if not data_dir.is_dir():
        return f"data {data_dir.name}"
    cases = [p for p in data_dir.iterdir() if p.is_dir()]
    source = cases[0].resolve().parent.name if cases else data_dir.name
    return f"{len(cases)} cases of {source}"


def _write(path: Path, text: str) -> Path:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return path


def _index_page(title: str, pages: list[Path], summary: Mapping) -> str:
    seconds = summary.get("seconds", {})
    rows = "\n".join(
        f'<li><a href="{p.name}">{html.escape(p.stem)}</a>'
        + (f" ({seconds[p.stem] / 60:.1f} min)" if p.stem in seconds else "")
        + "</li>"
        for p in pages
    )
    facts = ""
    if summary:
        facts = (
            f"<p>Profile <code>{html.escape(str(summary.get('profile')))}</code>, "
            f"{html.escape(_data_description(Path(str(summary.get('data_dir')))))}, "
            f"{summary.get('total_seconds', 0) / 60:.0f} min in all.</p>"
        )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
        f"{facts}\n<ol>\n{rows}\n</ol>\n</body></html>\n"
    )
