"""HTML for the console pages: one self-contained layout (inline CSS, no scripts, no CDN), escaped values.

Every page works inside the Airflow UI's plugin frame and on its own; links that leave the console
(an Airflow run, the trigger form) open in the top window.
"""

from __future__ import annotations

import html
import json
import logging
from urllib.parse import quote, urlencode

from turkey_airflow.console.console_links import CONSOLE_PREFIX as PREFIX

log = logging.getLogger(__name__)

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1a202c;background:#fff}
header{display:flex;gap:1.2rem;align-items:center;padding:.6rem 1.2rem;border-bottom:1px solid #e2e8f0;
 background:#f7fafc}
header strong{font-size:1.05rem}header a{color:#2b6cb0;text-decoration:none}header a.on{font-weight:600;
 border-bottom:2px solid #2b6cb0}
header .user{margin-left:auto;color:#4a5568;font-size:.9rem}
main{padding:1rem 1.2rem;max-width:1500px}
h1{font-size:1.35rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.35rem .55rem;border-bottom:1px solid #e2e8f0;vertical-align:top}
th{background:#edf2f7;white-space:nowrap}td.nowrap{white-space:nowrap}th a{color:inherit}td.num{font-variant-numeric:tabular-nums}
tr.champion{background:#f0fff4}
.badge{display:inline-block;padding:.05rem .45rem;border-radius:.6rem;font-size:.78rem;font-weight:600}
.b-champ{background:#c6f6d5;color:#22543d}.b-promote{background:#bee3f8;color:#2a4365}
.b-keep{background:#feebc8;color:#7b341e}.b-rollback{background:#e9d8fd;color:#44337a}
.b-reject{background:#fed7d7;color:#822727}
.muted{color:#718096}.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem}
.grid{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;font-size:.9rem}
.card{border:1px solid #e2e8f0;border-radius:.4rem;padding:.8rem 1rem;margin:.6rem 0}
.error{border-color:#feb2b2;background:#fff5f5}.ok{border-color:#9ae6b4;background:#f0fff4}
.btn{display:inline-block;padding:.4rem .9rem;border-radius:.3rem;border:1px solid #2b6cb0;background:#2b6cb0;
 color:#fff;text-decoration:none;font-size:.9rem;cursor:pointer}
.btn.secondary{background:#fff;color:#2b6cb0}.btn.danger{background:#c53030;border-color:#c53030}
img.curves{max-width:100%;border:1px solid #e2e8f0}.scroll{overflow-x:auto}
ol.timeline{list-style:none;padding:0}ol.timeline li{border-left:3px solid #cbd5e0;padding:.3rem 0 .6rem .8rem;
 margin-left:.3rem}
input[type=text]{width:28rem;max-width:100%;padding:.3rem}
"""


def esc(value) -> str:
    """HTML-escape anything (``None`` renders as an em dash)."""
    return "—" if value is None else html.escape(str(value), quote=True)


def url(path: str, **query) -> str:
    """A console URL; ``path`` segments are given already quoted by ``seg``."""
    q = {k: v for k, v in query.items() if v is not None}
    return f"{PREFIX}{path}" + (f"?{urlencode(q)}" if q else "")


def seg(text: str) -> str:
    """One URL path segment (a version or run id), percent-encoded."""
    return quote(str(text), safe="")


def run_url(dag_id: str | None, run_id: str | None) -> str | None:
    """The Airflow UI page of a DAG run."""
    if not dag_id or not run_id:
        return None
    return f"/dags/{seg(dag_id)}/runs/{seg(run_id)}"


def fmt(x, digits: int = 4) -> str:
    """A figure: integers as they are, other numbers with ``digits`` decimals."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return esc(x)
    return str(x) if isinstance(x, int) else f"{x:.{digits}f}"


def when(iso) -> str:
    """An ISO timestamp, shortened to seconds for tables (``2026-11-28 04:22:10Z``)."""
    text = str(iso or "")
    return esc(text[:19].replace("T", " ") + "Z") if len(text) >= 19 else esc(iso)


def page(title: str, body: str, *, active: str = "", user: str | None = None, status_note: str = "") -> str:
    """The whole HTML document: console header (nav) and ``body``."""
    nav = "".join(
        f'<a href="{url(path)}" class="{"on" if key == active else ""}">{label}</a>'
        for key, path, label in (("models", "/models", "Models"), ("batches", "/batches", "Batches"),
                                 ("audit", "/audit", "Audit"))
    )
    who = f'<span class="user">signed in as <b>{esc(user)}</b></span>' if user else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)} · turkey models</title><style>{CSS}</style></head><body>"
        f'<header><strong>turkey models</strong>{nav}<a href="/" target="_top">Airflow ↗</a>{who}</header>'
        f"<main>{status_note}{body}</main></body></html>"
    )


def error_page(status: int, title: str, detail: str, *, hint: str = "", user: str | None = None) -> str:
    """A clear error page: HTTP status, one-line reason and what to do; never a traceback."""
    body = (
        f'<h1>{esc(title)}</h1><div class="card error"><p><b>HTTP {status}</b>: {esc(detail)}</p>'
        + (f"<p>{hint}</p>" if hint else "")
        + f'<p><a href="{url("/models")}">Back to the models</a></p></div>'
    )
    return page(title, body, user=user)


def badge(text: str, kind: str) -> str:
    """A coloured label; ``kind`` picks the colour (CSS class ``b-<kind>``)."""
    return f'<span class="badge b-{kind}">{esc(text)}</span>'


def gate_badge(decision: str | None) -> str:
    """The badge of a gate decision: promote, keep champion, or the raw value (escaped) for anything else."""
    if decision == "promote":
        return badge("promote", "promote")
    if decision == "keep_champion":
        return badge("keep champion", "keep")
    return esc(decision)


def action_badge(action: str | None) -> str:
    """The badge of an audit action (promote, rollback, repair, rejected)."""
    kind = {"promote": "promote", "rollback": "rollback"}.get(str(action), "keep")
    if str(action).startswith(("reject", "denied")):
        kind = "reject"
    return badge(str(action), kind)


def json_block(value) -> str:
    """``value`` as indented, escaped JSON in a ``<pre>`` block."""
    return f'<pre class="mono">{esc(json.dumps(value, indent=2, sort_keys=True, default=str))}</pre>'


def line_chart(points: list[tuple[str, float]], width: int = 640, height: int = 180) -> str:
    """An inline SVG line chart (no script) of ``(label, value)`` points, values in [0, 1] shown on a
    zoomed axis around them; each point has a tooltip with its label and value."""
    values = [v for _, v in points if v is not None]
    if not values:
        return '<p class="muted">No figure yet.</p>'
    lo, hi = max(0.0, min(values) - 0.02), min(1.0, max(values) + 0.02)
    span, pad = (hi - lo) or 1.0, 36
    step = (width - 2 * pad) / max(1, len(points) - 1)

    def xy(i, v):
        return pad + i * step, height - pad - (v - lo) / span * (height - 2 * pad)

    coords = [xy(i, v) for i, (_, v) in enumerate(points) if v is not None]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(coords))
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#2b6cb0"><title>{esc(label)}: {v:.4f}</title>'
                   "</circle>" for (label, v), (x, y) in zip([p for p in points if p[1] is not None], coords, strict=True))
    axis = "".join(f'<text x="4" y="{xy(0, t)[1] + 4:.1f}" font-size="11" fill="#718096">{t:.3f}</text>'
                   for t in (lo, (lo + hi) / 2, hi))
    return (f'<svg class="chart" width="{width}" height="{height}" role="img" aria-label="lineage AUC">{axis}'
            f'<path d="{path}" fill="none" stroke="#2b6cb0" stroke-width="2"/>{dots}</svg>')
