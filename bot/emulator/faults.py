"""Injected faults: the next N requests to a path answer an error status and/or come late."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Fault:
    path: str  # an exact Messaging API path or a prefix of one
    status: int | None  # None: only slow, then handled normally
    times: int
    latency: float  # seconds

    def matches(self, path: str) -> bool:
        return path.startswith(self.path)


class Faults:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def take(self, path: str) -> Fault | None:
        """The oldest fault for this path, counting one use of it."""
        for fault in self._faults:
            if fault.matches(path):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def pending(self) -> list[dict[str, object]]:
        return [
            {"path": f.path, "status": f.status, "times": f.times, "latencyMs": f.latency * 1000}
            for f in self._faults
        ]
