"""Self-contained HTML pages of Plotly figures and tables, readable offline.

plotly.js is embedded once in the page head, so a report opens without a
network connection and the figures add only their data.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.5rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
p.note { color: #8a4b00; background: #fff6e5; padding: 0.5rem 0.8rem; border-left: 3px solid #e0a000; }
p.verdict { font-size: 1.05rem; background: #eef6ee; padding: 0.6rem 0.9rem; border-left: 3px solid #2a8a2a; }
"""

# Figures never fetch anything: no MathJax, no topojson, no Plotly cloud links.
_FIGURE_CONFIG = {"displaylogo": False, "responsive": True}


class Page:
    """An HTML report assembled section by section, then written in one piece."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.figures = 0
        self._parts: list[str] = []

    def heading(self, text: str, level: int = 2) -> None:
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def text(self, paragraph: str, css_class: str | None = None) -> None:
        attribute = f' class="{css_class}"' if css_class else ""
        self._parts.append(f"<p{attribute}>{html.escape(paragraph)}</p>")

    def note(self, paragraph: str) -> None:
        """Add a highlighted paragraph, used where a figure cannot be drawn, with the reason."""
        self.text(paragraph, "note")

    def facts(self, rows: Mapping[str, Any]) -> None:
        """Add a two-column table of labels and values."""
        cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows.items())
        self._parts.append(f"<table>{cells}</table>")

    def table(self, frame: pd.DataFrame, float_format: str = "{:.4g}") -> None:
        self._parts.append(frame.to_html(index=False, escape=True, border=0, na_rep="-", float_format=float_format.format))

    def figure(self, figure: go.Figure) -> None:
        self.figures += 1
        self._parts.append(figure.to_html(
            full_html=False, include_plotlyjs=False, include_mathjax=False,
            div_id=f"figure-{self.figures}", config=_FIGURE_CONFIG,
        ))

    def render(self) -> str:
        return (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(self.title)}</title>\n<style>{_STYLE}</style>\n"
            f"<script type=\"text/javascript\">{get_plotlyjs()}</script>\n</head>\n<body>\n"
            f"<h1>{html.escape(self.title)}</h1>\n" + "\n".join(self._parts) + "\n</body>\n</html>\n"
        )

    def write(self, path: Path) -> Path:
        """Write the page to `path` through a temporary file, so a reader never sees half a report."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        partial.write_text(self.render(), encoding="utf-8")
        os.replace(partial, path)
        return path
