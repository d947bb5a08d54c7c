"""Helpers the unit tests share."""


class FakeClock:
    """A monotonic clock that moves only when slept on (or set): `sleep` records each wait."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
