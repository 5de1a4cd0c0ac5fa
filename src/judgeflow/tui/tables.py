"""The dashboard's two wide tables: one row per pipeline actor, and one row per model called.

These are the panels a reader scans to see where a run is slow (a full inbox, a stage with calls queued, a
model retrying 429s), so they get their own module; like every renderer here, each is a pure function from
snapshot data (and the channel counters read at repaint time) to a Rich renderable.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

from .formatting import ChannelView, Palette, bar, fmt_duration, fmt_rate, fmt_tokens, fmt_usd
from .views import ActorView, ModelView

__all__ = ["render_pipeline", "render_providers"]

# Channels that are not named "<actor>.inbox" but still are one actor's inbox.
_INBOX_OF = {
    "documents": "question_writer",
    "questions": "question_router",
    "answers": "answer_router",
    "teacher.outbox": "teacher_router",
    "students.outbox": "student_router",
    "judgements": "judgement_router",
}


def render_pipeline(
    actors: Sequence[ActorView], channels: Sequence[ChannelView], palette: Palette, *, judging: bool = False
) -> RenderableType:
    """One row per actor: items, throughput, estimated calls in flight, its inbox, progress and ETA.

    A judge run (``judging``) has one row per judge; without channel counters its inbox columns would stay empty,
    so they are left out.
    """
    inboxes: dict[str, ChannelView] = {}
    others: list[ChannelView] = []
    for channel in channels:
        owner = _INBOX_OF.get(channel.name) or channel.name.removesuffix(".inbox")
        if channel.name.endswith(".inbox") or channel.name in _INBOX_OF:
            inboxes[owner] = channel
        else:
            others.append(channel)
    table = Table(expand=True, box=None, padding=(0, 1), header_style=palette.accent)
    table.add_column("judge" if judging else "stage", no_wrap=True)
    table.add_column("w", justify="right")
    for name in ("in", "out", "fail", "parsed", "now/s", "avg/s", "busy"):
        table.add_column(name, justify="right", no_wrap=True)
    with_inboxes = bool(channels) or not judging
    if with_inboxes:
        table.add_column("inbox", justify="right", no_wrap=True)
        table.add_column("peak", justify="right", no_wrap=True)
        table.add_column("wait", justify="right", no_wrap=True)
    table.add_column("progress", no_wrap=True)
    table.add_column("ETA", justify="right", no_wrap=True)
    for actor in actors:
        inbox = inboxes.get(actor.name)
        dim = actor.state == "waiting" or (actor.total is None and actor.name.endswith(("router", "scorer")))
        style = palette.dim if dim else Style()
        if actor.progress is None:
            progress = Text("")
        else:
            shown = f"{bar(actor.progress, 10)} {actor.progress * 100:3.0f}%"
            progress = Text(shown + ("" if actor.total_exact else "~"), palette.good if actor.progress >= 1 else "")
        mark = {"done": "✔", "running": "▸", "waiting": "·"}[actor.state]
        cells: list[RenderableType] = [
            f"{mark} {actor.name}",
            str(actor.workers or ""),
            f"{actor.items_in:,}",
            f"{actor.items_out:,}",
            Text(f"{actor.failed:,}", palette.bad if actor.failed else ""),
            _parsed(actor, palette),
            fmt_rate(actor.rate_now),
            fmt_rate(actor.rate_avg),
            "" if actor.busy is None else f"{actor.busy:.1f}",
        ]
        if with_inboxes:
            cells += [
                Text(f"{inbox.current}/{inbox.capacity}", _fill_style(inbox, palette)) if inbox else "",
                str(inbox.peak) if inbox else "",
                f"{inbox.wait_s:.1f}s" if inbox else "",
            ]
        cells += [
            progress,
            "" if actor.state == "done" else fmt_duration(actor.eta_s) if actor.progress is not None else "",
        ]
        table.add_row(*cells, style=style)
    if not others:
        return table
    line = Text("other channels: ", palette.dim)
    line.append("  ".join(f"{c.name} {c.current}/{c.capacity} (peak {c.peak})" for c in others), palette.dim)
    return Group(table, line)


def _parsed(actor: ActorView, palette: Palette) -> Text:
    """The share of the actor's model replies that were usable: a stage's parse rate."""
    if actor.parsed is None:
        return Text("")
    style = palette.good if actor.parsed >= 1.0 else palette.bad if actor.parsed == 0.0 else palette.warn
    return Text(f"{actor.parsed * 100:.0f}%", style)


def _fill_style(channel: ChannelView, palette: Palette) -> Style:
    if channel.capacity and channel.current >= channel.capacity:
        return palette.bad
    if channel.capacity and channel.current * 2 >= channel.capacity:
        return palette.warn
    return Style()


def render_providers(models: Sequence[ModelView], palette: Palette) -> RenderableType:
    """Per model: calls, failures, tokens, cost, mean latency, retries (and 429s), concurrency cap/max."""
    if not models:
        return Text("no model calls yet", palette.dim)
    table = Table(expand=True, box=None, padding=(0, 1), pad_edge=False, header_style=palette.accent)
    table.add_column("model", no_wrap=True, overflow="ellipsis", min_width=12)
    for name in ("calls", "fail", "tok in", "tok out", "cost", "latency", "retry/429", "conc"):
        table.add_column(name, justify="right", no_wrap=True)
    for model in models:
        concurrency = "" if model.limit is None else f"{model.limit}/{model.maximum}"
        retries = f"{model.retries}/{model.rate_limited}" if model.retries else "0"
        table.add_row(
            model.name,
            f"{model.calls:,}",
            Text(f"{model.failed:,}", palette.bad if model.failed else ""),
            fmt_tokens(model.input_tokens),
            fmt_tokens(model.output_tokens),
            fmt_usd(model.cost_usd),
            "" if model.mean_latency_s is None else f"{model.mean_latency_s * 1000:,.0f}ms",
            Text(retries, palette.warn if model.rate_limited else ""),
            concurrency,
        )
    return table
