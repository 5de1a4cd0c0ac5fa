"""``report.html``: one self-contained page (no CDN, no server, no script needed to read it) a person looks at.

It renders report.json's numbers and `judgeflow.report.analysis`'s view with the hand-written SVG charts of
`judgeflow.report.svg`; a few lines of inline JavaScript add hover on scatters and sorting and filtering of
tables. Every text from a run (answers, judges' replies, judge names) is escaped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from judgeflow.core.metrics import METRICS
from judgeflow.report import svg
from judgeflow.report.sources import Texts

__all__ = ["TEXT_CHARS", "render_html"]

TEXT_CHARS = 1500
_NAMES = {
    "pearson": "Pearson r",
    "spearman": "Spearman rho",
    "kendall": "Kendall tau-b",
    "kappa": "Cohen's kappa (quadratic)",
    "exact": "Exact agreement",
    "within1": "Within 1 point",
    "mae": "Mean absolute error",
    "auc": "ROC AUC",
    "accuracy": "Accuracy",
}
_LABEL_NAMES = {"kappa": "Cohen's kappa", "pearson": "Pearson r", "spearman": "Spearman rho"}

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.2em auto;max-width:1280px;padding:0 1em;
color:#1d1d1f}h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.4em 0 .4em;border-bottom:1px solid #ddd}
h3{font-size:1.02em;margin:1em 0 .3em}table{border-collapse:collapse;margin:.4em 0}
td,th{border:1px solid #d5d5d5;padding:3px 7px;vertical-align:top;text-align:left}th{background:#f4f4f6}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.ci{color:#777;font-size:.86em}
.muted{color:#666}.charts{display:flex;flex-wrap:wrap;gap:10px}.charts figure{margin:0}
svg.chart{border:1px solid #e6e6e6;background:#fff;font:11px system-ui,sans-serif}
svg .title{font-weight:600;font-size:12px}svg .label{fill:#444}svg .axis{fill:none;stroke:#888}
svg .grid{stroke:#eee}svg .ideal{stroke:#999;stroke-dasharray:4 3;fill:none}svg .dots{fill:#1f77b4;fill-opacity:.45}
svg .series{fill:none;stroke:#d62728;stroke-width:1.6}svg.lines .series{stroke-width:1.4}
svg .whisker{stroke:#d62728}svg circle{fill:#d62728}svg .cells rect{fill:#08519c}svg text.light{fill:#fff}
td.long{max-width:330px;white-space:pre-wrap;word-break:break-word;font-size:12px}
details>summary{cursor:pointer;color:#1a5fb4}input.filter{margin:.3em 0;padding:3px 6px;width:22em}
#tip{position:fixed;display:none;background:#ffffe6;border:1px solid #999;padding:2px 6px;font-size:12px;
pointer-events:none}th.sortable{cursor:pointer}
"""

# Hover on scatters (nearest point within 6 px) and sortable, filterable tables. The page is complete without it.
_JS = """
(()=>{const tip=document.getElementById('tip');
document.querySelectorAll('svg.scatter').forEach(sv=>{const d=JSON.parse(sv.nextElementSibling.textContent);
sv.addEventListener('mousemove',e=>{const r=sv.getBoundingClientRect(),k=sv.viewBox.baseVal.width/r.width,
mx=(e.clientX-r.left)*k,my=(e.clientY-r.top)*k;let b=-1,bd=36;for(let i=0;i<d.px.length;i++){
const dx=d.px[i]-mx,dy=d.py[i]-my,q=dx*dx+dy*dy;if(q<bd){bd=q;b=i}}
if(b<0){tip.style.display='none';return}tip.textContent=d.ids[b]+': '+d.x[b]+' / '+d.y[b];
tip.style.left=e.clientX+12+'px';tip.style.top=e.clientY+12+'px';tip.style.display='block'});
sv.addEventListener('mouseleave',()=>{tip.style.display='none'})});
document.querySelectorAll('table.sortable').forEach(t=>{t.querySelectorAll('th').forEach((th,c)=>{
th.classList.add('sortable');th.addEventListener('click',()=>{const b=t.tBodies[0],up=th.dataset.dir!=='up';
th.dataset.dir=up?'up':'down';[...b.rows].sort((x,y)=>{const p=x.cells[c].textContent,q=y.cells[c].textContent,
m=parseFloat(p)-parseFloat(q);return (isNaN(m)?p.localeCompare(q):m)*(up?1:-1)}).forEach(r=>b.appendChild(r))})})});
document.querySelectorAll('input.filter').forEach(f=>{const t=document.getElementById(f.dataset.table);
f.addEventListener('input',()=>{const q=f.value.toLowerCase();
[...t.tBodies[0].rows].forEach(r=>{r.style.display=r.textContent.toLowerCase().includes(q)?'':'none'})})});
document.documentElement.dataset.ready='1'})();
"""


def _fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return escape(str(value))


def _estimate(entry: Mapping[str, Any] | None) -> str:
    if not entry:
        return "n/a"
    ci = entry.get("ci95")
    interval = f' <span class="ci">[{_fmt(ci[0])}, {_fmt(ci[1])}]</span>' if ci else ""
    return f"{_fmt(entry.get('value'))}{interval}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], *, cls: str = "", ident: str = "") -> str:
    attrs = (f' class="{cls}"' if cls else "") + (f' id="{ident}"' if ident else "")
    header = "".join(f"<th>{cell}</th>" for cell in head)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table{attrs}><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def _num(text: str) -> str:
    return f'<td class="num">{text}</td>'


def _agreement(report: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> str:
    entries = dict(report.get("agreement") or {})
    entries.update(extra or {})
    if not entries:
        return '<p class="muted">Only one judge: nothing to compare.</p>'
    judges = list(entries)
    rows = [
        [f"<td>{_NAMES[m]}</td>", *(_num(_estimate(entries[j].get(m))) for j in judges)]
        for m in METRICS
        if any(m in entries[j] for j in judges)
    ]
    for key in ("n", "unparsed", "failed", "unscored"):
        if any(key in entries[j] for j in judges):
            rows.append([f"<td>{key}</td>", *(_num(_fmt(entries[j].get(key))) for j in judges)])
    return _table(["metric", *(escape(j) for j in judges)], rows)


def _difference(report: Mapping[str, Any]) -> str:
    diff = report.get("pearson_difference")
    if not diff:
        return ""
    first, second = (escape(j) for j in diff["judges"])
    needed = diff.get("items_needed")
    n = diff.get("n")
    if needed is None:
        plan = "The items needed to tell them apart cannot be estimated (no difference, or no interval)."
    elif n is not None and needed <= n:
        plan = f"Told apart at 95% with these {n:,} items (about {needed:,} would do)."
    else:
        plan = f"To tell them apart at 95%, this run would need about <b>{needed:,}</b> items (it has {n or 0:,})."
    return f"<p>Pearson r of {first} minus that of {second}: <b>{_estimate(diff)}</b> (paired bootstrap). {plan}</p>"


def _labels(labels: Mapping[str, Any] | None) -> str:
    if not labels:
        return ""
    judges = labels["judges"]
    names = list(judges)
    metrics = ["auc", "kappa", "accuracy"] if labels["kind"] == "binary" else ["kappa", "pearson", "spearman"]
    rows = [
        [f"<td>{(_LABEL_NAMES if labels['kind'] == 'scale' else _NAMES).get(m, m)}</td>"]
        + [_num(_estimate(judges[j].get(m))) for j in names]
        for m in metrics
    ]
    rows.append(["<td>n</td>", *(_num(_fmt(judges[j]["n"])) for j in names)])
    rows.append(["<td>labelled, not scored</td>", *(_num(_fmt(judges[j]["unscored"])) for j in names)])
    if labels["kind"] == "binary":
        what = (
            f"true/false labels: AUC ranks the judge's scores (no threshold); kappa and accuracy read a score of "
            f"{labels['threshold']:g} or more as true"
        )
    else:
        what = "1-5 labels: quadratic-weighted kappa, Pearson, Spearman"
    return (
        f"<h2>Against human labels</h2><p>{labels['labelled']:,} labelled items; {what}. "
        "95% bootstrap intervals in brackets.</p>" + _table(["metric", *(escape(j) for j in names)], rows)
    )


def _panel(panel: Mapping[str, Any] | None) -> str:
    if not panel:
        return ""
    counts = panel["counts"]
    members = ", ".join(escape(m) for m in panel["members"])
    against = "the human labels" if panel["compared_with"] == "labels" else escape(panel["compared_with"])
    parts = [
        f"<h2>Panel of judges</h2><p>Members: {members}; compared with {against}. The mean is taken over the "
        "members that scored an item; the majority is the most common (half-up rounded) score, and a tie stays "
        "a tie.</p>",
        f"<p>Of {counts['items']:,} items: every member scored {counts['complete']:,}, some but not all "
        f"{counts['partial']:,}, none {counts['none']:,}. Majority decided on {counts['majority_decided']:,}, "
        f"<b>tied on {counts['majority_tied']:,}</b>.</p>",
    ]
    status_rows = [
        [f"<td>{escape(m)}</td>", *(_num(_fmt(c.get(k, 0))) for k in ("ok", "unparsed", "failed", "missing"))]
        for m, c in panel["per_member"].items()
    ]
    parts.append(_table(["member", "scored", "unparsed", "failed", "missing"], status_rows))
    if panel.get("agreement"):
        parts.append(f"<h3>Derived judges against {against}</h3>" + _agreement({}, panel["agreement"]))
    names = panel["matrix"]["judges"]
    pairs = panel["matrix"]["pairs"]
    rows = [
        [f"<th>{escape(a)}</th>"]
        + [
            _num(f"{_fmt(pairs[a][b]['kappa'], 2)} <span class='ci'>n={pairs[a][b]['n']:,}</span>")
            if a != b
            else "<td></td>"
            for b in names
        ]
        for a in names
    ]
    parts.append("<h3>Agreement matrix (quadratic kappa, items both scored)</h3>")
    parts.append(_table(["", *(escape(n) for n in names)], rows))
    errors = panel["error_correlation"]
    err_rows = [
        [f"<th>{escape(a)}</th>", *(_num(_fmt(v, 2)) for v in row)]
        for a, row in zip(errors["judges"], errors["matrix"], strict=True)
    ]
    worth = errors.get("effective_judges")
    parts.append(
        f"<h3>How alike their errors are</h3><p>Pearson correlation of each member's error (score minus "
        f"{against}); mean between members {_fmt(errors['mean'], 2)}"
        + (f", so the panel is worth about {worth:.1f} independent judges" if worth else "")
        + ".</p>"
        + _table(["", *(escape(n) for n in errors["judges"])], err_rows)
    )
    return "".join(parts)


def _pair_charts(pair: Mapping[str, Any], reference: str) -> str:
    judge = pair["judge"]
    scatter = pair["scatter"]
    shown = scatter["shown"]
    title = f"{judge} vs {reference}"
    sample = f" ({shown:,} of {pair['n']:,} shown)" if shown < pair["n"] else ""
    frame_lo, frame_hi = 0.5, 5.5
    chart = svg.scatter(
        scatter["x"], scatter["y"], title=title + sample, x_label=reference, y_label=judge, lo=frame_lo, hi=frame_hi
    )
    px, py = svg.scatter_pixels(scatter["x"], scatter["y"], lo=frame_lo, hi=frame_hi)
    points = json.dumps({"px": px, "py": py, "x": scatter["x"], "y": scatter["y"], "ids": scatter["ids"]})
    points = points.replace("</", "<\\/")
    labels = ["1", "2", "3", "4", "5"]
    heat = svg.heatmap(
        pair["confusion"],
        rows=labels,
        columns=labels,
        title="confusion (rounded scores)",
        x_label=judge,
        y_label=reference,
    )
    calibration = svg.calibration(
        [tuple(p) for p in pair["calibration"]],
        title="calibration: mean score per reference score",
        x_label=reference,
        y_label=judge,
        lo=frame_lo,
        hi=frame_hi,
    )
    return (
        f"<h3>{escape(judge)} against {escape(reference)} ({pair['n']:,} items both scored)</h3>"
        f'<div class="charts"><figure>{chart}<script type="application/json">{points}</script></figure>'
        f"<figure>{heat}</figure><figure>{calibration}</figure></div>"
    )


def _groups(groups: Mapping[str, Any]) -> str:
    parts = []
    for field, entry in groups.items():
        rows = []
        judges: list[str] = []
        for group in entry["groups"]:
            judges = judges or list(group["judges"])
            cells = [f"<td>{escape(group['value'])}</td>", _num(_fmt(group["items"]))]
            for judge in judges:
                stats = group["judges"][judge]
                cells += [_num(_fmt(stats["n"])), _num(_estimate(stats["kappa"])), _num(_estimate(stats["exact"]))]
            rows.append(cells)
        head = [escape(field), "items"]
        for judge in judges:
            head += [f"{escape(judge)}: n", "kappa", "exact"]
        more = entry["distinct"] - len(entry["groups"])
        note = f' <span class="muted">({more} smaller groups not shown)</span>' if more > 0 else ""
        parts.append(f"<h3>By {escape(field)}{note}</h3>" + _table(head, rows, cls="sortable"))
    return ("<h2>Agreement by group</h2>" + "".join(parts)) if parts else ""


def _cut(text: str) -> str:
    if len(text) <= TEXT_CHARS:
        return escape(text)
    return escape(text[:TEXT_CHARS]) + f" <span class='muted'>… ({len(text) - TEXT_CHARS:,} more characters)</span>"


def _disagreements(pair: Mapping[str, Any], reference: str, texts: Mapping[str, Texts], index: int) -> str:
    judge = pair["judge"]
    rows = []
    for row in pair["disagreements"]:
        item = texts.get(row["id"], Texts())
        rows.append(
            [
                f"<td>{escape(row['id'])}</td>",
                _num(_fmt(row["reference"], 1)),
                _num(_fmt(row["score"], 1)),
                f'<td class="long">{_cut(item.question)}</td>',
                f'<td class="long">{_cut(item.reference)}</td>',
                f'<td class="long"><details><summary>answer</summary>{_cut(item.answer)}</details></td>',
                f'<td class="long"><details><summary>{escape(reference)}</summary>'
                f"{_cut(item.raw.get(reference, ''))}</details></td>",
                f'<td class="long"><details><summary>{escape(judge)}</summary>'
                f"{_cut(item.raw.get(judge, ''))}</details></td>",
            ]
        )
    if not rows:
        return f"<h3>{escape(judge)}: no disagreement with {escape(reference)}</h3>"
    ident = f"dis{index}"
    head = ["id", escape(reference), escape(judge), "question", "reference answer", "answer", "reasoning", "reasoning"]
    return (
        f"<h3>{escape(judge)} against {escape(reference)}: the {len(rows)} largest disagreements</h3>"
        f'<input class="filter" data-table="{ident}" placeholder="filter rows">'
        + _table(head, rows, cls="sortable", ident=ident)
    )


def _health(view: Mapping[str, Any], texts: Mapping[str, Texts]) -> str:
    rates = view["parse_rates"]
    chart = svg.bars(rates, title="verdicts by status", order=("ok", "unparsed", "failed", "missing"))
    rows = [
        [
            f"<td>{escape(j)}</td>",
            *(_num(_fmt(c.get(k, 0))) for k in ("ok", "unparsed", "failed", "missing")),
            _num(f"{100 * c.get('ok', 0) / max(1, sum(c.values())):.1f}%"),
        ]
        for j, c in rates.items()
    ]
    parts = [
        "<h2>Parse rates and failures</h2>",
        f'<div class="charts"><figure>{chart}</figure></div>',
        _table(["judge", "ok", "unparsed", "failed", "missing", "parsed"], rows),
    ]
    problems = []
    for judge, entries in view["problems"].items():
        for item_id, status, why in entries:
            raw = texts.get(item_id, Texts()).raw.get(judge, "")
            problems.append(
                [
                    f"<td>{escape(judge)}</td>",
                    f"<td>{escape(item_id)}</td>",
                    f"<td>{escape(status)}</td>",
                    f'<td class="long">{_cut(why)}</td>',
                    f'<td class="long"><details><summary>reply</summary>{_cut(raw)}</details></td>',
                ]
            )
    if problems:
        parts.append("<h3>Unparsed and failed verdicts (the first 50 of each judge)</h3>")
        parts.append(_table(["judge", "id", "status", "why", "raw reply"], problems, cls="sortable"))
    return "".join(parts)


def _outcome(report: Mapping[str, Any]) -> str:
    """A run that measured nothing says so first, with the reason each missing number is missing."""
    parts = []
    failure = report.get("failure")
    if failure:
        parts.append(f"<p><b>The run failed at stage {escape(failure['stage'])}</b>: {_cut(failure['message'])}</p>")
    missing = report.get("missing") or {}
    if missing:
        items = "".join(f"<li>{escape(key)}: {escape(why)}</li>" for key, why in missing.items())
        parts.append(f"<p>Missing numbers, and why:</p><ul>{items}</ul>")
    return "".join(parts)


def _stages(report: Mapping[str, Any]) -> str:
    """Each stage's parse rate (the question writer's too), how the judges were asked, and every fallback."""
    stages = report.get("stages") or {}
    scoring = report.get("scoring") or {}
    if not stages and not scoring.get("fallbacks"):
        return ""
    rows = []
    for stage, entry in stages.items():
        rate = entry.get("parse_rate")
        rows.append(
            [
                f"<td>{escape(stage)}</td>",
                *(_num(_fmt(entry.get(k, 0))) for k in ("replies", "usable", "unusable", "failed")),
                _num("n/a" if rate is None else f"{100 * rate:.1f}%"),
            ]
        )
    parts = ["<h2>Stages</h2>", _table(["stage", "replies", "usable", "unusable", "failed calls", "parsed"], rows)]
    asked = scoring.get("asked") or {}
    if asked:
        parts.append("<p>" + "; ".join(f"{escape(k)} scored by {escape(v)}" for k, v in asked.items()) + ".</p>")
    fallbacks = [
        f"<li>{escape(f['role'])}: {escape(f['server'])} refused {escape(f['feature'])} for {escape(f['model'])}; "
        f"asked with {escape(f['instead'])} instead ({_cut(f['detail'])})</li>"
        for f in scoring.get("fallbacks") or []
    ]
    if fallbacks:
        parts.append(f"<ul>{''.join(fallbacks)}</ul>")
    return "".join(parts)


def _costs(costs: Mapping[str, Any]) -> str:
    models = costs.get("models") or {}
    if not models:
        return "<h2>Costs</h2><p class='muted'>No paid calls (local models).</p>"
    rows = [
        [
            f"<td>{escape(m)}</td>",
            _num(_fmt(e.get("calls"))),
            _num(_fmt(e.get("input_tokens"))),
            _num(_fmt(e.get("output_tokens"))),
            _num(f"{e.get('cost_usd', 0.0):.4f}"),
            _num(_fmt(e.get("judgements"))),
            _num("n/a" if e.get("usd_per_1000") is None else f"{e['usd_per_1000']:.4f}"),
        ]
        for m, e in models.items()
    ]
    head = ["model", "calls", "tokens in", "tokens out", "cost (USD)", "judgements", "USD per 1,000 judgements"]
    return f"<h2>Costs</h2>{_table(head, rows)}<p>Total: {costs.get('total_usd', 0.0):.4f} USD.</p>"


def _throughput(throughput: Mapping[str, Any] | None) -> str:
    if not throughput:
        return "<h2>Throughput</h2><p class='muted'>The verdicts carry no times (an older file).</p>"
    series = {j: (s["t"], s["rate"]) for j, s in throughput["series"].items()}
    chart = svg.lines(series, title="verdicts per second", x_label="seconds since the first verdict", y_label="/s")
    return f"<h2>Throughput</h2><div class='charts'><figure>{chart}</figure></div>"


def render_html(report: Mapping[str, Any], view: Mapping[str, Any], texts: Mapping[str, Texts], *, title: str) -> str:
    """The whole page: ``report`` is report.json's data, ``view`` the analysis, ``texts`` the items shown."""
    reference = view["reference"]
    intro = (
        f"{view['items']:,} items; judges: {', '.join(escape(j) for j in view['judges'])}. "
        f"Each judge is compared with <b>{escape(reference)}</b> on the items both scored; "
        "95% paired-bootstrap confidence intervals in brackets; n/a means undefined (too few items, a constant "
        "judge), never zero."
    )
    body = [
        f"<h1>{escape(title)}</h1><p>{intro}</p>",
        _outcome(report),
        "<h2>Agreement</h2>",
        _agreement(report),
        _difference(report),
        _labels(view.get("labels")),
        _panel(view.get("panel")),
    ]
    if view["pairs"]:
        body.append("<h2>Judge against judge</h2>")
        body += [_pair_charts(pair, reference) for pair in view["pairs"]]
    body.append(_groups(view["groups"]))
    body.append(_health(view, texts))
    body.append(_stages(report))
    body.append(_costs(view["costs"]))
    body.append(_throughput(view.get("throughput")))
    if view["pairs"]:
        body.append("<h2>Largest disagreements</h2>")
        body += [_disagreements(pair, reference, texts, k) for k, pair in enumerate(view["pairs"])]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        + "".join(body)
        + f'<div id="tip"></div><script>{_JS}</script></body></html>\n'
    )
