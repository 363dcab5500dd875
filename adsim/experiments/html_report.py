"""``report.html``: a finished run folder as one self-contained web page.

:func:`write_html_report` reads what a runner wrote into a run folder — ``report.md`` (the text,
the leaderboard, the reproduce command), the figures as SVG, the CSV tables, ``scenario.yaml``
and ``results.json`` (seed, library versions) — and writes ``report.html``: a single file with
no external URL, no script and no file beside it that it needs, so it can be mailed, opened
offline or projected. SVG figures are inlined (their ``id`` attributes prefixed per figure so
two figures never share an id); a figure with only a PNG is embedded as a ``data:`` URI. A
Content-Security-Policy meta tag forbids the page from fetching anything, so a browser would
report any stray external reference as an error (``tests/experiments/test_report_html.py``
opens the page in headless Chromium and checks for such errors).
"""

from __future__ import annotations

import base64
import csv
import html
import json
import os
import re
from pathlib import Path
from typing import Any

from adsim._io import write_text

__all__ = ["write_html_report", "finish_run_folder", "HTML_FILE", "MAX_TABLE_ROWS"]

HTML_FILE = "report.html"
#: rows of each CSV table shown in the page (the CSV file has them all)
MAX_TABLE_ROWS = 40

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 margin:0 auto;max-width:1100px;padding:1.5rem 2rem;color:#1d1d1f;background:#fff;
 line-height:1.45}
h1{font-size:1.7rem;border-bottom:2px solid #1f77b4;padding-bottom:.3rem}
h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
pre{background:#f5f5f7;border:1px solid #e3e3e8;border-radius:4px;padding:.7rem;
 overflow-x:auto;font-size:.82rem;line-height:1.3}
code{background:#f0f0f3;border-radius:3px;padding:0 .25rem;font-size:.9em}
pre code{background:none;padding:0}
.cmd{font-size:1rem;background:#eef5fb;border-color:#b9d4ea}
table{border-collapse:collapse;font-size:.8rem;margin:.5rem 0 1rem;display:block;
 overflow-x:auto;max-width:100%}
th,td{border:1px solid #ddd;padding:.2rem .5rem;text-align:right;white-space:nowrap}
th{background:#f0f0f3;position:sticky;top:0}
td.t,th.t{text-align:left}
tr:nth-child(even) td{background:#fafafa}
figure{margin:1rem 0;text-align:center}
figure svg,figure img{max-width:100%;height:auto}
figcaption{font-size:.8rem;color:#555}
.note{font-size:.8rem;color:#555}
@media print{body{max-width:none;padding:0}h2{break-after:avoid}figure{break-inside:avoid}}
"""


def _inline(text: str) -> str:
    """Escaped text with `code` and **bold** spans."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


_SVG_HEAD = re.compile(r"^.*?(?=<svg\b)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>", re.S)


def _svg_inline(svg: str, prefix: str) -> str:
    """An SVG file's text made fit to sit inside HTML: no XML prolog or metadata block, and every
    id (and reference to it) prefixed with ``prefix`` so that ids stay unique in the page."""
    svg = _SVG_HEAD.sub("", svg, count=1)
    svg = _METADATA.sub("", svg)
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", svg)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m.group(1)}"', svg)


class _Page:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.shown: set[str] = set()  # figure stems already on the page
        self.n_fig = 0

    def figure(self, name: str) -> str:
        """A figure by file name (``x.png`` or ``x.svg``): inline SVG, else a PNG data URI."""
        stem = Path(name).stem
        self.shown.add(stem)
        self.n_fig += 1
        svg = self.folder / f"{stem}.svg"
        png = self.folder / f"{stem}.png"
        cap = f"<figcaption>{html.escape(stem)} (files: {stem}.png, {stem}.svg)</figcaption>"
        if svg.is_file():
            body = _svg_inline(svg.read_text(encoding="utf-8"), f"f{self.n_fig}-")
        elif png.is_file():
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            body = f'<img alt="{html.escape(stem)}" src="data:image/png;base64,{data}">'
        else:
            return f'<p class="note">figure {html.escape(name)} is missing from the folder</p>'
        return f"<figure>{body}{cap}</figure>"

    def markdown(self, text: str) -> str:
        """The Markdown that :func:`adsim.experiments.report.write_report` writes: headings,
        paragraphs, ``- `` lists, fenced blocks, images (rendered as inline figures)."""
        out: list[str] = []
        para: list[str] = []
        items: list[str] = []
        lines = text.splitlines()
        i = 0

        def flush() -> None:
            if para:
                out.append(f"<p>{_inline(' '.join(para))}</p>")
                para.clear()
            if items:
                out.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in items) + "</ul>")
                items.clear()

        while i < len(lines):
            line = lines[i]
            if line.startswith("```"):
                flush()
                j = i + 1
                while j < len(lines) and not lines[j].startswith("```"):
                    j += 1
                out.append("<pre><code>" + html.escape("\n".join(lines[i + 1:j])) + "</code></pre>")
                i = j + 1
                continue
            m_img = re.fullmatch(r"!\[[^\]]*\]\(([^)]+)\)", line.strip())
            if m_img:
                flush()
                out.append(self.figure(m_img.group(1)))
            elif line.startswith("#"):
                flush()
                level = min(len(line) - len(line.lstrip("#")), 4)
                title = line[level:].strip()
                out.append(f"<h{level}>{_inline(title)}</h{level}>")
            elif line.startswith("- "):
                if para:
                    flush()
                items.append(line[2:])
            elif not line.strip():
                flush()
            elif line.startswith("Reproduce:"):
                flush()
                cmd = line.split(":", 1)[1].strip().strip("`")
                out.append('<p>Reproduce (from the folder the run was started in):</p>'
                           f'<pre class="cmd"><code>{html.escape(cmd)}</code></pre>')
            else:
                para.append(line.strip())
            i += 1
        flush()
        return "\n".join(out)


def _cell(value: str) -> tuple[str, bool]:
    """A CSV cell for display (numbers to 6 significant digits) and whether it is text."""
    try:
        x = float(value)
    except ValueError:
        return html.escape(value), True
    if value.strip().lstrip("-").isdigit():
        return value, False
    return (f"{x:.6g}" if x == x else "—"), False


def _csv_table(path: Path) -> str:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        return f'<p class="note">{html.escape(path.name)} is empty</p>'
    head, body = rows[0], rows[1:]
    shown = body[:MAX_TABLE_ROWS]
    cells = [[_cell(v) for v in r] for r in shown]
    text_col = [all(r[j][1] for r in cells if j < len(r) and r[j][0]) for j in range(len(head))]
    th = "".join(f'<th class="{"t" if t else ""}">{html.escape(h)}</th>'
                 for h, t in zip(head, text_col))
    trs = "".join("<tr>" + "".join(f'<td class="{"t" if t else ""}">{c[0]}</td>'
                                   for c, t in zip(r, text_col)) + "</tr>" for r in cells)
    note = (f'<p class="note">first {len(shown)} of {len(body)} rows; the full table is '
            f"{html.escape(path.name)}</p>" if len(body) > len(shown) else "")
    return f"<h3>{html.escape(path.name)}</h3><table><thead><tr>{th}</tr></thead>" \
           f"<tbody>{trs}</tbody></table>{note}"


def _versions(results: dict[str, Any]) -> str:
    rows = [("seed", str(results.get("seed", "—")))]
    rows += [(k, str(v)) for k, v in (results.get("versions") or {}).items()]
    return "<table><tbody>" + "".join(
        f'<tr><th class="t">{html.escape(k)}</th><td class="t">{html.escape(v)}</td></tr>'
        for k, v in rows) + "</tbody></table>"


def write_html_report(folder: str | os.PathLike[str], title: str | None = None) -> Path:
    """Write ``folder/report.html`` from the run folder's files; returns its path."""
    folder = Path(folder)
    page = _Page(folder)
    results: dict[str, Any] = {}
    if (folder / "results.json").is_file():
        results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    name = title or str((results.get("scenario") or {}).get("name", folder.name))
    parts: list[str] = []
    md = folder / "report.md"
    if md.is_file():
        parts.append(page.markdown(md.read_text(encoding="utf-8")))
    else:
        parts.append(f"<h1>adsim run: {html.escape(name)}</h1>")
    rest = sorted(p for p in folder.glob("*.svg") if p.stem not in page.shown)
    rest += sorted(p for p in folder.glob("*.png")
                   if p.stem not in page.shown and not (folder / f"{p.stem}.svg").is_file())
    if rest:
        parts.append("<h2>More figures</h2>")
        parts += [page.figure(p.name) for p in rest]
    tables = sorted(folder.glob("*.csv"))
    if tables:
        parts.append("<h2>Tables</h2>")
        parts += [_csv_table(p) for p in tables]
    scn = folder / "scenario.yaml"
    if scn.is_file():
        parts.append("<h2>Scenario (resolved, as run)</h2>")
        parts.append(f"<pre><code>{html.escape(scn.read_text(encoding='utf-8'))}</code></pre>")
    parts.append("<h2>Seed and library versions</h2>")
    parts.append(_versions(results))
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.is_file() and p.name != HTML_FILE)
    parts.append('<h2>Files of this run</h2><p class="note">'
                 + ", ".join(html.escape(f) for f in files) + "</p>")
    doc = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">\n"
        f"<title>adsim run: {html.escape(name)}</title>\n<style>{_CSS}</style>\n</head>\n"
        "<body>\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )
    path = folder / HTML_FILE
    write_text(path, doc)
    return path


def finish_run_folder(out: str | os.PathLike[str], scenario: Any) -> list[Path]:
    """The last step of every runner's writer: save the resolved ``scenario.yaml`` and write
    ``report.html`` from everything in the folder. Returns the two paths."""
    from adsim.experiments.report import write_scenario

    scn = write_scenario(out, scenario)
    return [scn, write_html_report(out)]
