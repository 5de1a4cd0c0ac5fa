"""The spending budget: every paid call reserves its worst-case cost before it starts, and settles at its real one.

So the recorded spend never passes the cap, calls in flight included: when the next call could take spending past
it, `Budget.reserve` raises `BudgetExceeded` (and publishes `BudgetExhausted` once, at the first refusal), and the
actor turns that into a failed item instead of a call.

A budget shared by several processes is an `Allowance`: each process's `Budget` starts with nothing and draws its
cap from it as calls need (`Budget.make_room`), then gives back what it did not spend (`Budget.give_back`), so the
processes together never pass the one cap (`judgeflow.flows.ray.limiter` keeps it for a Ray cluster).
"""

from __future__ import annotations

import math
from types import TracebackType
from typing import Protocol

from judgeflow.protocol.bus import Publish
from judgeflow.protocol.events import BudgetExhausted

__all__ = ["Allowance", "Budget", "BudgetExceeded", "Reservation"]


class BudgetExceeded(Exception):
    """A call was refused before it started: it could have taken spending past the budget."""

    def __init__(self, *, budget_usd: float, spent_usd: float, reserved_usd: float, estimate_usd: float) -> None:
        super().__init__(
            f"budget of ${budget_usd:.4f} reached: spent ${spent_usd:.4f} + in flight ${reserved_usd:.4f} "
            f"+ this call ${estimate_usd:.4f} would exceed it"
        )
        self.budget_usd = budget_usd
        self.spent_usd = spent_usd
        self.reserved_usd = reserved_usd
        self.estimate_usd = estimate_usd


class Reservation:
    """Money set aside for one call until it is settled with the actual cost, or released unspent.

    Use it as a context manager: leaving the block without `settle` releases it (a failed or cancelled call).
    ``release`` after ``settle`` does nothing, so ``finally: reservation.release()`` is always safe.
    """

    __slots__ = ("_budget", "_open", "estimate_usd")

    def __init__(self, budget: Budget, estimate_usd: float) -> None:
        self._budget = budget
        self.estimate_usd = estimate_usd
        self._open = True

    @property
    def open(self) -> bool:
        return self._open

    def settle(self, actual_usd: float) -> None:
        """Record what the call cost and free its reservation. Raises RuntimeError when already closed."""
        if not self._open:
            raise RuntimeError("this reservation was already settled or released")
        _check_usd("actual_usd", actual_usd)
        self._open = False
        self._budget._close(self, actual_usd)

    def release(self) -> None:
        """Free the reservation without spending (the call failed before it cost anything)."""
        if self._open:
            self._open = False
            self._budget._close(self, 0.0)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "open" if self._open else "closed"
        return f"Reservation(estimate_usd={self.estimate_usd!r}, {state})"


def _check_usd(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


class Allowance(Protocol):
    """Where a budget shared with other processes comes from: `grant` at least ``wanted_usd`` more when it can
    (less when the shared cap is nearly used up, 0.0 when it is), `give_back` what was granted and not spent
    (sync: sent, never waited on)."""

    async def grant(self, wanted_usd: float) -> float: ...

    def give_back(self, unspent_usd: float) -> None: ...


class Budget:
    """A spending cap checked before each paid call starts.

    A call reserves its estimated cost first; the reservation is refused (`BudgetExceeded`) when spent plus
    every outstanding reservation plus this estimate would pass ``max_usd``. Counting calls in flight is what
    keeps a hundred concurrent calls from each seeing the same headroom. With estimates that are upper
    bounds (prompt tokens plus ``max_tokens`` at list price) the recorded spend never exceeds the budget; an
    estimate that was too low is still settled at its true cost (the ledger must not lie), and later calls
    are refused. `BudgetExhausted` is published once, at the first refusal. ``max_usd=None`` only keeps
    count.

    Every method is sync and none awaits: on a single-threaded event loop the check and the reservation
    happen with no task switch between them, so no lock is needed (and none could be wanted from a sync
    method). Do not share a Budget between threads.
    """

    def __init__(self, max_usd: float | None, *, publish: Publish, allowance: Allowance | None = None) -> None:
        if max_usd is not None:
            _check_usd("max_usd", max_usd)
        # With an allowance the cap is what was drawn from it so far (``max_usd`` only says that there is one).
        self._allowance = allowance if max_usd is not None else None
        self.max_usd = 0.0 if self._allowance is not None else max_usd
        self._publish = publish
        self._spent = 0.0
        self._reserved = 0.0
        self._outstanding = 0
        self._exhausted = False

    @property
    def spent_usd(self) -> float:
        return self._spent

    @property
    def reserved_usd(self) -> float:
        return self._reserved

    @property
    def remaining_usd(self) -> float | None:
        """Headroom for new reservations (None when unlimited)."""
        if self.max_usd is None:
            return None
        return max(0.0, self.max_usd - self._spent - self._reserved)

    @property
    def exhausted(self) -> bool:
        """Whether a reservation has been refused."""
        return self._exhausted

    async def make_room(self, estimate_usd: float) -> None:
        """With an allowance, draw from it until ``estimate_usd`` fits (or the allowance has no more); without
        one, nothing. `reserve` then decides as always."""
        allowance = self._allowance
        if allowance is None or self.max_usd is None:
            return
        while self._spent + self._reserved + estimate_usd > self.max_usd:
            missing = self._spent + self._reserved + estimate_usd - self.max_usd
            granted = await allowance.grant(missing)
            if granted <= 0:
                return
            self.max_usd += granted

    def give_back(self) -> None:
        """Return to the allowance what was drawn and neither spent nor reserved (the run is ending)."""
        if self._allowance is not None and self.max_usd is not None:
            unspent = max(0.0, self.max_usd - self._spent - self._reserved)
            if unspent > 0:
                self.max_usd -= unspent
                self._allowance.give_back(unspent)

    def reserve(self, estimate_usd: float) -> Reservation:
        """Set aside ``estimate_usd`` for a call about to start, or raise `BudgetExceeded`."""
        _check_usd("estimate_usd", estimate_usd)
        if self.max_usd is not None and self._spent + self._reserved + estimate_usd > self.max_usd:
            if not self._exhausted:
                self._exhausted = True
                self._publish(BudgetExhausted(spent_usd=self._spent, budget_usd=self.max_usd))
            raise BudgetExceeded(
                budget_usd=self.max_usd,
                spent_usd=self._spent,
                reserved_usd=self._reserved,
                estimate_usd=estimate_usd,
            )
        self._reserved += estimate_usd
        self._outstanding += 1
        return Reservation(self, estimate_usd)

    def _close(self, reservation: Reservation, actual_usd: float) -> None:
        self._spent += actual_usd
        self._outstanding -= 1
        # Subtracting floats in a different order from adding them leaves dust; with nothing outstanding the
        # true value is exactly zero.
        self._reserved = 0.0 if self._outstanding == 0 else max(0.0, self._reserved - reservation.estimate_usd)

    def __repr__(self) -> str:
        return f"Budget(max_usd={self.max_usd!r}, spent_usd={self._spent!r}, reserved_usd={self._reserved!r})"
