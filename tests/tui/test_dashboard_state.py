"""The dashboard's state, folded from events without an app or an event loop: time is an argument."""

from __future__ import annotations

import time

import pytest

from judgeflow.protocol.events import (
    ActorFinished,
    ActorStarted,
    BudgetExhausted,
    CallFinished,
    CallRetry,
    ConcurrencyChanged,
    Event,
    ItemDone,
    ItemFailed,
    Missed,
    RunFinished,
    RunStarted,
    ScoreUpdate,
    ServerDown,
    ServerUp,
    TrainingStatus,
)
from judgeflow.protocol.messages import Usage
from judgeflow.tui.series import Eta, PerSecond
from judgeflow.tui.state import DashboardState
from judgeflow.tui.summaries import render_status
from judgeflow.tui.views import score_level

METRICS = {"pearson": 0.5, "spearman": 0.4, "kendall": 0.3, "kappa": 0.2, "exact": 0.6, "within1": 0.9, "mae": 0.7}


def fold_all(state: DashboardState, timed: list[tuple[float, Event]]) -> None:
    for now, event in timed:
        state.fold(event, now)


# -- PerSecond: throughput windows -----------------------------------------------------------------------------


def test_rate_is_the_sum_over_the_window_divided_by_the_time_it_covers() -> None:
    series = PerSecond(0.0)
    for second in range(20):
        for _ in range(second % 2 + 1):  # alternately 1 and 2 items per second: 1.5/s on average
            series.add(second + 0.5)
    # At t=19.5 the 10 s window holds seconds 10..19 (15 items) and covers 9.5 s of them.
    assert series.window_sum(19.5, 10) == 15
    assert series.rate(19.5, 10) == pytest.approx(15 / 9.5)


def test_rate_uses_the_time_since_start_early_on_and_never_less_than_a_second() -> None:
    series = PerSecond(100.0)
    series.add(100.2)
    assert series.rate(100.3, 10) == pytest.approx(1.0)  # one item in 0.3 s is not 3.3/s
    for _ in range(5):
        series.add(101.5)
    assert series.rate(102.0, 10) == pytest.approx(6 / 2.0)


def test_rate_decays_to_zero_when_work_stops() -> None:
    series = PerSecond(0.0)
    for second in range(5):
        series.add(second, 10)
    assert series.rate(4.9, 10) > 0
    assert series.rate(30.0, 10) == 0


def test_old_buckets_are_dropped_and_history_fills_idle_seconds_with_zeros() -> None:
    series = PerSecond(0.0, keep_s=5)
    series.add(0.1)
    series.add(2.5, 3)
    series.add(2.7)
    series.add(9.0)
    assert series.history(9.5, since=0.0, seconds=10) == (0, 0, 0, 0, 1)  # seconds 5..9: no more is kept
    assert series.history(9.5, since=8.0, seconds=10) == (0, 1)
    fresh = PerSecond(0.0)
    fresh.add(0.1)
    fresh.add(2.5, 3)
    fresh.add(2.7)
    assert fresh.history(3.2, since=0.0, seconds=10) == (1, 0, 4, 0)
    assert fresh.history(3.2, since=0.0, seconds=2) == (4, 0)


# -- Eta --------------------------------------------------------------------------------------------------------


def test_eta_from_a_steady_speed() -> None:
    eta = Eta(window_s=30.0, resolution_s=0.5)
    for second in range(11):
        eta.add(float(second), 2.0 * second)  # 2 units per second
    assert eta.speed == pytest.approx(2.0)
    assert eta.eta(10.0, total=100) == pytest.approx(40.0)  # 80 left at 2/s


def test_eta_counts_down_between_samples_for_a_while_and_never_claims_done_early() -> None:
    eta = Eta(window_s=30.0, resolution_s=0.5, max_extrapolate_s=10.0)
    eta.add(0.0, 0.0)
    eta.add(10.0, 20.0)
    assert eta.eta(14.0, total=100) == pytest.approx(36.0)
    assert eta.eta(100.0, total=100) == pytest.approx(30.0)  # counted down at most 10 s
    assert eta.eta(100.0, total=21) == 1.0
    assert eta.eta(10.0, total=20) == 0.0


def test_eta_needs_a_speed_and_restarts_when_the_count_goes_back() -> None:
    eta = Eta()
    assert eta.eta(0.0, total=10) is None
    eta.add(0.0, 5.0)
    assert eta.eta(0.0, total=10) is None
    eta.add(5.0, 5.0)
    assert eta.eta(5.0, total=10) is None  # no progress, no speed
    eta.add(10.0, 1.0)  # corrected down: earlier samples no longer apply
    assert eta.speed is None


def test_eta_keeps_few_samples_however_many_are_added() -> None:
    eta = Eta(window_s=10.0, resolution_s=0.5)
    for step in range(10_000):
        eta.add(step * 0.01, float(step))  # 100 units per second for 100 s
    assert eta.speed == pytest.approx(100.0)
    assert len(eta._samples) <= 10.0 / 0.5 + 3


# -- per actor ---------------------------------------------------------------------------------------------------


def test_actor_counts_rates_and_busy_estimate() -> None:
    state = DashboardState(window_s=10)
    state.fold(RunStarted("runs/x", 2), 0.0)
    state.fold(ActorStarted("teacher", 8), 0.0)
    for second in range(20):
        for _ in range(4):
            state.fold(CallFinished("teacher", "gpt-4o", latency_s=2.0), second + 0.5)
            state.fold(ItemDone("teacher", f"q{second}"), second + 0.5)
    state.fold(ItemFailed("teacher", "bad", "TimeoutError"), 19.6)
    view = state.snapshot(20.0).actor("teacher")
    assert view is not None
    assert (view.items_in, view.items_out, view.failed, view.workers) == (81, 80, 1, 8)
    assert view.state == "running"
    assert view.rate_now == pytest.approx(40 / 10.0)
    assert view.rate_avg == pytest.approx(80 / 20.0)
    assert view.busy == pytest.approx(4 * 2.0 * 10 / 10.0)  # 4 calls/s of 2 s each: 8 in flight
    assert len(view.history) == 21
    assert view.history[:3] == (4, 4, 4)
    assert view.history[-1] == 0


def test_actor_finished_counts_are_exact() -> None:
    state = DashboardState()
    fold_all(
        state,
        [
            (0.0, RunStarted("runs/x", 2)),
            (0.0, ActorStarted("question_writer", 2)),
            *[(1.0, ItemDone("question_writer", f"d1-q{i:03d}")) for i in range(3)],
            (2.0, ItemFailed("question_writer", "d2", "ValueError: empty document")),
            # The question writer reports documents in and nothing out: its questions were counted live.
            (3.0, ActorFinished("question_writer", items_in=2, items_out=0, failed=1)),
        ],
    )
    view = state.snapshot(3.0).actor("question_writer")
    assert view is not None
    assert (view.items_in, view.items_out, view.failed, view.state) == (2, 3, 1, "done")
    assert view.progress == 1.0
    assert view.total_exact


def test_question_writer_progress_counts_documents_once() -> None:
    state = DashboardState()
    state.fold(RunStarted("runs/x", 3), 0.0)
    for q in range(3):
        state.fold(ItemDone("question_writer", f"city-a-q{q:03d}"), 1.0)
    state.fold(ItemFailed("question_writer", "city-a", "RuntimeError: model went away"), 1.5)  # after 3 questions
    state.fold(ItemDone("question_writer", "city-b-q000"), 2.0)
    view = state.snapshot(2.0).actor("question_writer")
    assert view is not None
    assert (view.items_in, view.items_out, view.failed, view.total) == (2, 4, 1, 3)


def test_actors_are_listed_in_pipeline_order() -> None:
    state = DashboardState()
    for name in ("scorer", "custom", "teacher", "question_writer"):
        state.fold(ActorStarted(name, 1), 0.0)
    assert [view.name for view in state.snapshot(0.0).actors] == ["question_writer", "teacher", "scorer", "custom"]


# -- progress and ETA --------------------------------------------------------------------------------------------


def test_totals_are_estimated_from_questions_per_document_then_exact() -> None:
    state = DashboardState()
    fold_all(state, [(0.0, RunStarted("runs/x", 4)), (0.0, ActorStarted("question_writer", 1))])
    assert state.snapshot(0.0).progress.total == 4 + 1  # documents + the training step; the rest unknown yet
    for doc in range(2):
        for q in range(3):
            state.fold(ItemDone("question_writer", f"doc-{doc}-q{q:03d}"), 1.0 + doc)
    snapshot = state.snapshot(3.0)
    writer = snapshot.actor("question_writer")
    assert writer is not None
    assert writer.progress == 0.5  # questions from 2 of the 4 documents
    # 3 questions per document so far, 4 documents: about 12 questions for each 1:1 stage.
    assert snapshot.progress.total == 4 + 12 * 3 + 1
    assert not snapshot.progress.exact
    state.observe_split(train=4, test=2)
    assert state.snapshot(3.0).progress.total == 4 + 12 * 3 + 1 + 2 * 4  # a third held out: 4 per student

    for doc in range(2, 4):
        for q in range(2):
            state.fold(ItemDone("question_writer", f"doc-{doc}-q{q:03d}"), 4.0)
    state.fold(ActorFinished("question_writer", 4, 0, 0), 4.0)
    state.observe_split(train=7, test=3)
    snapshot = state.snapshot(4.0)
    assert snapshot.progress.total == 4 + 10 * 3 + 1 + 3 * 2
    assert snapshot.progress.exact


def test_stage_eta_and_overall_eta_follow_throughput() -> None:
    state = DashboardState(window_s=10)
    fold_all(state, [(0.0, RunStarted("runs/x", 1)), (0.0, ActorStarted("retriever", 1))])
    state.expect("retriever", 100)
    for second in range(10):
        for i in range(5):
            state.fold(ItemDone("retriever", f"q{second}-{i}"), second + 0.5)
    snapshot = state.snapshot(10.0)
    retriever = snapshot.actor("retriever")
    assert retriever is not None
    assert retriever.progress == 0.5
    assert retriever.eta_s == pytest.approx(50 / 5.0)
    assert snapshot.progress.eta_s is not None
    assert snapshot.progress.eta_s > 0


def test_finished_run_is_complete_and_elapsed_stops() -> None:
    state = DashboardState()
    fold_all(state, [(10.0, RunStarted("runs/x", 1)), (25.0, RunFinished("runs/x", ok=True))])
    snapshot = state.snapshot(99.0)
    assert snapshot.status == "finished"
    assert snapshot.elapsed_s == 15.0
    assert snapshot.progress.fraction == 1.0
    assert snapshot.progress.eta_s == 0.0


def test_stream_end_without_run_finished_ends_the_run() -> None:
    state = DashboardState()
    state.fold(RunStarted("runs/x", 1), 0.0)
    state.stream_ended(5.0)
    assert state.snapshot(9.0).status == "finished"
    failed = DashboardState()
    failed.fold(RunFinished("runs/x", ok=False, message="boom"), 1.0)
    failed.stream_ended(2.0)
    assert (failed.snapshot(3.0).status, failed.snapshot(3.0).message) == ("failed", "boom")


# -- models and costs --------------------------------------------------------------------------------------------


def test_models_count_calls_tokens_cost_retries_and_concurrency() -> None:
    state = DashboardState()
    fold_all(
        state,
        [
            (1.0, CallFinished("teacher", "gpt-4o", 1.0, Usage(100, 20), 0.01)),
            (2.0, CallFinished("teacher", "gpt-4o", 3.0, Usage(50, 10), 0.005)),
            (2.0, CallFinished("teacher", "gpt-4o", 0.5, ok=False)),
            (2.0, CallRetry("openai", "chat", "gpt-4o", 1, 2.0, "rate_limited")),
            (2.0, CallRetry("openai", "chat", "gpt-4o", 2, 4.0, "transient")),
            (3.0, ConcurrencyChanged("openai", "chat", "gpt-4o", 6, 16)),
            (3.0, CallFinished("answerer", "local-extractive", 0.001)),
        ],
    )
    models = {model.name: model for model in state.snapshot(4.0).models}
    gpt = models["gpt-4o"]
    assert (gpt.calls, gpt.failed, gpt.input_tokens, gpt.output_tokens) == (3, 1, 150, 30)
    assert gpt.cost_usd == pytest.approx(0.015)
    assert gpt.mean_latency_s == pytest.approx(4.5 / 3)
    assert (gpt.retries, gpt.rate_limited, gpt.limit, gpt.maximum, gpt.provider) == (2, 1, 6, 16, "openai")
    assert models["local-extractive"].cost_usd == 0


def test_cost_projection_scales_each_stage_by_its_progress() -> None:
    state = DashboardState()
    state.fold(RunStarted("runs/x", 1), 0.0)
    state.expect("teacher", 100)
    for i in range(25):
        state.fold(CallFinished("teacher", "gpt-4o", 1.0, cost_usd=0.02), 1.0)
        state.fold(ItemDone("teacher", f"q{i}"), 1.0)
    costs = state.snapshot(2.0).costs
    assert costs.spent_usd == pytest.approx(0.5)
    assert costs.projected_usd == pytest.approx(2.0)  # $0.02 per item, 100 items
    assert not costs.projection_partial
    # A stage that spends without a known total counts what it spent, and the projection says it is partial.
    state.fold(CallFinished("custom_stage", "gpt-4o", 1.0, cost_usd=0.1), 2.0)
    costs = state.snapshot(2.0).costs
    assert costs.projected_usd == pytest.approx(2.1)
    assert costs.projection_partial
    assert [(name, round(cost, 9)) for name, cost in costs.by_model] == [("gpt-4o", 0.6)]


def test_no_spending_means_no_projection_and_budget_is_shown_when_hit() -> None:
    state = DashboardState()
    assert state.snapshot(0.0).costs.projected_usd is None
    state.fold(BudgetExhausted(spent_usd=4.99, budget_usd=5.0), 1.0)
    costs = state.snapshot(1.0).costs
    assert (costs.budget_usd, costs.budget_exhausted) == (5.0, True)


# -- agreement and heat map ----------------------------------------------------------------------------------------


def test_latest_score_update_per_student_then_final_report_with_intervals() -> None:
    state = DashboardState()
    state.fold(ScoreUpdate("student_base", "teacher", 10, 1, 0, {**METRICS, "pearson": 0.1}), 1.0)
    state.fold(ScoreUpdate("student_base", "teacher", 20, 2, 1, METRICS), 2.0)
    state.fold(ScoreUpdate("student_trained", "teacher", 5, 0, 0, {**METRICS, "kendall": None}), 2.0)
    snapshot = state.snapshot(2.0)
    assert [view.judge for view in snapshot.agreement] == ["student_trained", "student_base"]
    base = snapshot.judge("student_base")
    assert base is not None
    assert (base.n, base.unparsed, base.failed, base.metrics["pearson"], base.final) == (20, 2, 1, 0.5, False)
    trained = snapshot.judge("student_trained")
    assert trained is not None
    assert trained.metrics["kendall"] is None

    entry = {name: {"value": value, "ci95": [value - 0.1, value + 0.1]} for name, value in METRICS.items()}
    report = {
        "reference_judge": "teacher",
        "agreement": {
            "student_trained": {**entry, "kappa": {"value": None, "ci95": None}, "n": 30, "unparsed": 1, "failed": 0},
            "student_base": {**entry, "n": 30, "unparsed": 3, "failed": 2},
        },
        "pearson_difference": {"judges": ["student_trained", "student_base"], "value": 0.2, "ci95": [0.1, 0.3]},
    }
    state.fold_report(report)
    snapshot = state.snapshot(3.0)
    trained = snapshot.judge("student_trained")
    assert trained is not None
    assert trained.final
    assert (trained.n, trained.unparsed, trained.metrics["pearson"]) == (30, 1, 0.5)
    assert trained.ci95["pearson"] == pytest.approx((0.4, 0.6))
    assert trained.metrics["kappa"] is None
    assert trained.ci95["kappa"] is None
    assert snapshot.difference is not None
    assert (snapshot.difference.judges, snapshot.difference.value) == (("student_trained", "student_base"), 0.2)


@pytest.mark.parametrize(
    ("score", "level"), [(1.0, 1), (0.2, 1), (1.49, 1), (2.5, 3), (4.5, 5), (5.0, 5), (7.0, 5), (-3.0, 1)]
)
def test_score_levels_round_to_the_nearest_point_on_the_scale(score: float, level: int) -> None:
    assert score_level(score) == level


def test_heat_map_counts_pairs_per_student() -> None:
    state = DashboardState()
    for teacher, student in [(5, 5), (5, 4), (4.5, 5), (1, 1), (1, 2), (3, 3)]:
        state.fold_pair("student_base", teacher, student)
    state.fold_pair("student_trained", 2, 2)
    maps = {view.judge: view for view in state.snapshot(0.0).heatmaps}
    base = maps["student_base"]
    assert base.counts[4][4] == 2
    assert base.counts[4][3] == 1
    assert base.counts[0][1] == 1
    assert (base.total, base.peak) == (6, 2)
    assert [view.judge for view in state.snapshot(0.0).heatmaps] == ["student_trained", "student_base"]


# -- errors, training, missed ------------------------------------------------------------------------------------


def test_errors_keep_the_latest_few_with_actor_item_and_time() -> None:
    state = DashboardState(errors_kept=3)
    state.fold(RunStarted("runs/x", 1), 100.0)
    for i in range(5):
        state.fold(ItemFailed("answerer", f"q{i}", f"RuntimeError: {i}"), 101.0 + i)
    snapshot = state.snapshot(110.0)
    assert [(e.actor, e.item_id, e.at_s) for e in snapshot.errors] == [
        ("answerer", "q2", 3.0),
        ("answerer", "q3", 4.0),
        ("answerer", "q4", 5.0),
    ]
    assert snapshot.failures == 5


def test_training_status_and_log() -> None:
    state = DashboardState(training_kept=2)
    state.fold(ActorStarted("trainer", 1), 0.0)
    state.fold(TrainingStatus("student_trained", "training", "40 examples"), 1.0)
    assert state.snapshot(1.0).actor("trainer").progress == 0.0  # type: ignore[union-attr]
    state.fold(TrainingStatus("student_trained", "trained", "runs/x/student", progress=1.0), 2.0)
    state.fold(TrainingStatus("student_trained", "loaded", "runs/x/student"), 3.0)
    snapshot = state.snapshot(3.0)
    assert [(t.student, t.status) for t in snapshot.training] == [("student_trained", "loaded")]
    assert snapshot.training_log == (
        "student_trained: trained — runs/x/student",
        "student_trained: loaded — runs/x/student",
    )
    trainer = snapshot.actor("trainer")
    assert trainer is not None
    assert trainer.progress == 1.0


def test_missed_events_are_summed() -> None:
    state = DashboardState()
    state.fold(Missed(3), 0.0)
    state.fold(Missed(4), 1.0)
    snapshot = state.snapshot(1.0)
    assert (snapshot.missed, snapshot.events) == (7, 2)


# -- a judge run ---------------------------------------------------------------------------------------------------

JUDGES = {"openai:gpt-4o": 300, "local:teacher": 300}


def judge_run_started(judges: dict[str, int] = JUDGES, n_items: int = 300) -> RunStarted:
    return RunStarted("out.jsonl", 0, kind="judge", n_items=n_items, judges=judges)


def judge_run_events(seconds: int, per_second: int = 10) -> list[tuple[float, Event]]:
    """What `judge_file` publishes, in the order it does: the readers and routers report only at start."""
    timed: list[tuple[float, Event]] = [(0.0, judge_run_started())]
    timed += [(0.0, ActorStarted(name, 32)) for name in JUDGES]
    timed += [(0.0, ActorStarted(name, 1)) for name in ("writer", "scorer", "items")]
    for second in range(seconds):
        for i in range(per_second):
            item = f"item-{second}-{i}"
            timed.append((second + 0.5, CallFinished("openai:gpt-4o", "gpt-4o", 0.3, Usage(100, 5), 0.001)))
            timed.append((second + 0.5, ItemDone("openai:gpt-4o", item)))
            timed.append((second + 0.5, ItemDone("local:teacher", item)))
    return timed


def test_a_pipeline_run_start_keeps_the_pipeline_mode() -> None:
    state = DashboardState()
    state.fold(RunStarted("runs/x", 4), 0.0)
    snapshot = state.snapshot(0.0)
    assert (snapshot.mode, snapshot.progress.judges, snapshot.progress.items) == ("run", 0, None)
    assert state.documents == 4


def test_a_judge_run_counts_verdicts_of_its_judges_against_the_known_total() -> None:
    state = DashboardState(window_s=10)
    fold_all(state, judge_run_events(seconds=10))
    snapshot = state.snapshot(10.0)
    assert snapshot.mode == "judge"
    assert snapshot.status == "running"
    assert snapshot.out_dir == "out.jsonl"
    progress = snapshot.progress
    assert (progress.done, progress.total, progress.exact) == (200, 600, True)
    assert (progress.items, progress.judges) == (300, 2)
    assert progress.fraction == pytest.approx(1 / 3)
    assert progress.eta_s is not None
    assert 15 < progress.eta_s < 25  # 400 verdicts left at about 20 a second
    judge = snapshot.actor("openai:gpt-4o")
    assert judge is not None
    assert (judge.total, judge.total_exact) == (300, True)
    assert judge.progress == pytest.approx(1 / 3)
    assert judge.eta_s == pytest.approx(200 / 10.0)
    # 10 items a second at $0.001: $0.10 spent of $0.30 projected.
    assert snapshot.costs.projected_usd == pytest.approx(0.3)
    assert not snapshot.costs.projection_partial


def test_a_judge_run_lists_its_judges_first_and_hides_the_quiet_readers_and_routers() -> None:
    state = DashboardState()
    fold_all(state, judge_run_events(seconds=2))
    names = [view.name for view in state.snapshot(2.0).actors]
    assert names == ["openai:gpt-4o", "local:teacher"]  # not items, writer or scorer: they report only at the end
    # An actor that does report as it goes is shown, after the judges.
    state.fold(ItemFailed("helper", "item-x", "ValueError: bad"), 2.5)
    assert [view.name for view in state.snapshot(2.5).actors] == ["openai:gpt-4o", "local:teacher", "helper"]
    # The final counts of the quiet ones do not bring them back.
    state.fold(ActorFinished("writer", 40, 40, 0), 3.0)
    assert "writer" not in [view.name for view in state.snapshot(3.0).actors]


def test_a_resumed_judge_run_counts_only_what_is_left() -> None:
    state = DashboardState()
    state.fold(judge_run_started({"openai:gpt-4o": 120, "local:teacher": 0}), 0.0)
    state.fold(ActorStarted("local:teacher", 32), 0.0)
    for i in range(60):
        state.fold(ItemDone("openai:gpt-4o", f"item-{i}"), 1.0)
    snapshot = state.snapshot(1.0)
    assert (snapshot.progress.done, snapshot.progress.total, snapshot.progress.items) == (60, 120, 300)
    teacher = snapshot.actor("local:teacher")
    assert teacher is not None
    assert (teacher.progress, teacher.eta_s) == (1.0, 0.0)  # nothing was left for it


def test_a_judge_run_ends_finished_or_failed() -> None:
    state = DashboardState()
    fold_all(state, [*judge_run_events(seconds=2), (3.0, RunFinished("out.jsonl", ok=True))])
    snapshot = state.snapshot(9.0)
    assert (snapshot.status, snapshot.elapsed_s, snapshot.progress.fraction) == ("finished", 3.0, 1.0)
    failed = DashboardState(mode="judge")
    failed.fold(RunFinished("out.jsonl", ok=False, message="InputError: items.jsonl:2: invalid JSON"), 1.0)
    assert (failed.snapshot(1.0).status, failed.snapshot(1.0).message) == (
        "failed",
        "InputError: items.jsonl:2: invalid JSON",
    )


def test_judge_mode_from_the_caller_before_the_run_says_so() -> None:
    state = DashboardState(mode="judge")
    snapshot = state.snapshot(0.0)
    assert (snapshot.mode, snapshot.status, snapshot.actors) == ("judge", "waiting", ())
    # Verdicts before the run's start was received (it was missed): the judges are whoever reports them.
    state.fold(ItemDone("openai:gpt-4o", "item-1"), 1.0)
    state.fold(ActorStarted("items", 1), 1.0)
    snapshot = state.snapshot(1.0)
    assert [view.name for view in snapshot.actors] == ["openai:gpt-4o"]
    assert snapshot.progress.total is None


def test_a_server_away_is_shown_until_it_answers_again() -> None:
    state = DashboardState(mode="judge")
    fold_all(state, judge_run_events(seconds=2))
    since = 1_700_000_000.0
    state.fold(ServerDown("openai", "http://127.0.0.1:9/v1", since, "refused", probes=0), 3.0)
    state.fold(ServerDown("openai", "http://127.0.0.1:9/v1", since, "refused", probes=3), 4.0)
    snapshot = state.snapshot(4.0)
    at = time.strftime("%H:%M:%S", time.localtime(since))
    assert [outage.line() for outage in snapshot.outages] == [
        f"server unreachable since {at}, retrying (tried 4 times): http://127.0.0.1:9/v1"
    ]
    status = render_status(snapshot, paused=False).plain
    assert status.startswith(f" ⚠ server unreachable since {at}, retrying (tried 4 times): http://127.0.0.1:9/v1 ")
    state.fold(ServerUp("openai", "http://127.0.0.1:9/v1", down_s=5.0), 5.0)
    assert state.snapshot(5.0).outages == ()
    assert render_status(state.snapshot(5.0), paused=False).plain.startswith(" ● judging ")
