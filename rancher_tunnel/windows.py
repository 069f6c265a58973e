"""Credit-based flow control (h2 ``windows.py`` style), free of I/O.

The receiver of a stream grants credit; the sender never has more bytes in flight than it was
granted. Each stream is always entitled to ``min_window`` bytes of credit; credit above that, up
to ``max_window``, is borrowed from one :class:`SessionBudget` shared by all streams of a
session, so the bytes a session holds unconsumed are bounded by
``streams * min_window + budget`` however the peer and the application behave. A stream whose
reader stopped holds at most ``max_window`` bytes and stalls only itself.
"""

from __future__ import annotations

from .constants import MAX_WINDOW_BYTES, WINDOW_AUTOTUNE_PERIOD_S
from .errors import FlowControlError, LocalProtocolError, RemoteProtocolError


class SendWindow:
    """Credit we hold for sending on one stream."""

    __slots__ = ("credit",)

    def __init__(self, credit: int = 0) -> None:
        self.credit = credit

    def grant(self, increment: int) -> None:
        """The peer granted ``increment`` more bytes."""
        if increment <= 0:
            raise RemoteProtocolError("non-positive credit increment")
        if self.credit + increment > MAX_WINDOW_BYTES:
            raise RemoteProtocolError("credit window overflow")
        self.credit += increment

    def take(self, wanted: int) -> int:
        """Reserve up to ``wanted`` bytes of credit; returns how many may be sent now."""
        n = min(wanted, self.credit)
        self.credit -= n
        return n


class SessionBudget:
    """Credit above the per-stream minimum, shared by every stream of one session."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @property
    def free(self) -> int:
        return self.limit - self.used

    def borrow(self, wanted: int) -> int:
        n = max(0, min(wanted, self.free))
        self.used += n
        return n

    def repay(self, n: int) -> None:
        if n < 0 or n > self.used:
            raise AssertionError("budget repaid more than borrowed")
        self.used -= n


class ReceiveWindow:
    """Credit we granted to the peer on one stream, and bytes received but not yet consumed.

    ``granted + buffered`` (the stream's commitment) never exceeds ``max_window``; the part above
    ``min_window`` is borrowed from the session budget.
    """

    __slots__ = (
        "borrowed",
        "budget",
        "buffered",
        "epoch_bytes",
        "epoch_start",
        "granted",
        "limit_window",
        "max_window",
        "min_window",
        "unsent",
    )

    def __init__(
        self,
        budget: SessionBudget,
        min_window: int,
        max_window: int,
        initial_window: int | None = None,
        now: float = 0.0,
    ) -> None:
        if not 0 < min_window <= max_window <= MAX_WINDOW_BYTES:
            raise ValueError("need 0 < min_window <= max_window")
        self.budget = budget
        self.min_window = min_window
        self.limit_window = max_window  # auto-tuning never grows the window past this
        start = max_window if initial_window is None else initial_window
        self.max_window = max(min_window, min(start, max_window))
        self.granted = 0  # credit the peer holds (bytes it may still send)
        self.buffered = 0  # bytes received, not yet consumed by the application
        self.borrowed = 0  # part of granted + buffered borrowed from the budget
        self.unsent = 0  # credit reserved here but not yet announced to the peer
        self.epoch_start = now  # auto-tuning: when the current measuring epoch began
        self.epoch_bytes = 0  # bytes received since then

    @property
    def committed(self) -> int:
        return self.granted + self.unsent + self.buffered

    def received(self, n: int) -> None:
        """The peer sent ``n`` bytes; a peer sending past its credit breaks the protocol."""
        if n > self.granted:
            raise FlowControlError("stream data exceeds granted credit")
        self.granted -= n
        self.buffered += n
        self.epoch_bytes += n

    def consumed(self, n: int) -> None:
        """The application consumed ``n`` buffered bytes."""
        if n < 0 or n > self.buffered:
            raise LocalProtocolError("consumed more bytes than were received")
        self.buffered -= n
        self._settle()

    def _settle(self) -> None:
        """Repay borrowed credit that the commitment no longer needs."""
        borrowed = self.borrowed
        if borrowed:  # (nothing to repay otherwise: the common case of a small stream)
            need = max(0, self.granted + self.unsent + self.buffered - self.min_window)
            if need < borrowed:
                self.budget.repay(borrowed - need)
                self.borrowed = need

    def autotune(self, now: float) -> None:
        """Double the window (up to ``limit_window``) when the stream moved a whole window in
        less than ``WINDOW_AUTOTUNE_PERIOD_S``: a fast stream gets a window that covers the
        round trip, an idle or slow one (a watch, a stalled reader) keeps a small one."""
        if self.epoch_bytes < self.max_window:
            return
        if (
            self.max_window < self.limit_window
            and now - self.epoch_start < WINDOW_AUTOTUNE_PERIOD_S
        ):
            self.max_window = min(self.max_window * 2, self.limit_window)
        self.epoch_start = now
        self.epoch_bytes = 0

    def reserve(self) -> bool:
        """Top the commitment up towards ``max_window``; returns False if the budget clipped it."""
        committed = self.granted + self.unsent + self.buffered
        want = self.max_window - committed
        if want <= 0:
            return True
        free_floor = max(0, self.min_window - committed)
        extra = self.budget.borrow(want - free_floor) if want > free_floor else 0
        self.borrowed += extra
        self.unsent += free_floor + extra
        return free_floor + extra == want

    def take_grant(self, threshold: int) -> int:
        """Credit to announce now (0 if below ``threshold`` and the peer still has credit)."""
        if self.unsent and (self.unsent >= threshold or self.granted < threshold):
            n = self.unsent
            self.unsent = 0
            self.granted += n
            return n
        return 0

    def release(self) -> None:
        """The stream is gone: everything it held returns to the budget."""
        self.budget.repay(self.borrowed)
        self.borrowed = 0
        self.granted = self.buffered = self.unsent = 0
