"""How the MiniLM student cuts an item into windows (`judgeflow.providers.neural.windows`): plain lists of ids.

Needs torch only for `batch_windows` (skipped without the local extra).
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="the neural student needs the local extra (torch)")

from judgeflow.providers.neural.windows import (
    ANSWER,
    ANSWER_TAIL,
    QUESTION,
    REFERENCE,
    SPECIAL,
    batch_windows,
    fit_lengths,
    keep_ends,
    split_windows,
)

CLS, SEP = 101, 102


def _q(n: int) -> list[int]:
    return list(range(1000, 1000 + n))


def _r(n: int) -> list[int]:
    return list(range(2000, 2000 + n))


def _a(n: int) -> list[int]:
    return list(range(3000, 3000 + n))


def _pieces(ids: list[int], roles: list[int], role: int) -> list[int]:
    return [i for i, r in zip(ids, roles, strict=True) if r == role]


def test_an_item_that_fits_is_one_window_in_the_cross_encoder_layout() -> None:
    tokens = split_windows(_q(5), _r(3), _a(7), cls=CLS, sep=SEP, window=64, max_tokens=512)
    (window,) = tokens.windows
    assert window.ids == [CLS, *_q(5), SEP, *_r(3), SEP, *_a(7), SEP]
    assert window.types == [0] * 11 + [1] * 8
    assert window.roles == [SPECIAL, *[QUESTION] * 5, SPECIAL, *[REFERENCE] * 3, SPECIAL, *[ANSWER] * 7, SPECIAL]


def test_a_long_answer_is_read_whole_in_windows_against_the_short_pieces() -> None:
    tokens = split_windows(_q(10), _r(4), _a(300), cls=CLS, sep=SEP, window=64, max_tokens=2048)
    assert len(tokens.windows) > 1
    answer = []
    for window in tokens.windows:
        assert len(window) <= 64
        # The question and the reference are short: every window repeats them whole.
        assert _pieces(window.ids, window.roles, QUESTION) == _q(10)
        assert _pieces(window.ids, window.roles, REFERENCE) == _r(4)
        answer += _pieces(window.ids, window.roles, ANSWER)
    assert answer == _a(300)  # every answer token once, in order


def test_long_pieces_are_cut_in_step_so_ends_meet_ends() -> None:
    tokens = split_windows(_q(10), _r(200), _a(200), cls=CLS, sep=SEP, window=128, max_tokens=2048)
    first, last = tokens.windows[0], tokens.windows[-1]
    assert _pieces(first.ids, first.roles, REFERENCE)[0] == 2000
    assert _pieces(first.ids, first.roles, ANSWER)[0] == 3000
    assert _pieces(last.ids, last.roles, REFERENCE)[-1] == 2199
    assert _pieces(last.ids, last.roles, ANSWER)[-1] == 3199
    assert all(len(w) <= 128 for w in tokens.windows)
    references = [t for w in tokens.windows for t in _pieces(w.ids, w.roles, REFERENCE)]
    assert references == _r(200)


def test_max_tokens_shortens_the_longest_piece_keeping_its_start_and_end() -> None:
    tokens = split_windows(_q(10), _r(20), _a(1000), cls=CLS, sep=SEP, window=256, max_tokens=130)
    answer = [t for w in tokens.windows for t in _pieces(w.ids, w.roles, ANSWER)]
    assert len(answer) == 100
    assert answer[:50] == _a(1000)[:50]
    assert answer[50:] == _a(1000)[-50:]
    assert keep_ends([1, 2, 3, 4, 5], 3) == [1, 2, 5]
    assert keep_ends([1, 2], 5) == [1, 2]


def test_fit_lengths_trims_the_longest_first() -> None:
    assert fit_lengths([3, 4, 5], 100) == [3, 4, 5]
    assert fit_lengths([10, 3, 200], 60) == [10, 3, 47]
    assert sum(fit_lengths([50, 50, 50], 61)) == 61


def test_a_batch_gathers_each_items_reference_and_answer_tokens_over_its_windows() -> None:
    one = split_windows(_q(2), _r(2), _a(3), cls=CLS, sep=SEP, window=64, max_tokens=512)
    many = split_windows(_q(2), _r(2), _a(120), cls=CLS, sep=SEP, window=32, max_tokens=512)
    batch = batch_windows([one, many], pad=0)
    assert batch.n_items == 2
    assert batch.owner.tolist() == [0] + [1] * len(many.windows)
    flat = batch.ids.reshape(-1)
    answers = flat[batch.answer_at[1]][batch.answer_mask[1]].tolist()
    assert answers == _a(120)
    references = flat[batch.reference_at[1]][batch.reference_mask[1]].tolist()
    assert references == _r(2) * len(many.windows)
    assert flat[batch.answer_at[0]][batch.answer_mask[0]].tolist() == _a(3)
    assert int(batch.mask[0].sum()) == len(one.windows[0])
    # The tails: the reference's last tokens and the answer's last ones, in the last window.
    assert flat[batch.answer_at[1]][batch.answer_tail[1]].tolist() == _a(120)[-ANSWER_TAIL:]
    assert flat[batch.reference_at[1]][batch.reference_tail[1]].tolist() == _r(2)
    assert flat[batch.answer_at[0]][batch.answer_tail[0]].tolist() == _a(3)


def test_a_window_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="window"):
        split_windows(_q(2), _r(2), _a(2), cls=CLS, sep=SEP, window=8, max_tokens=512)
