"""ASHA by brute force, for the property tests to compare the real pruner against."""

from __future__ import annotations

from aiotune.trial import Direction


class AshaReference:
    """Every rung of every bracket kept whole and ranked again at each report.

    Trial ``n`` belongs to bracket ``n % brackets``, whose rungs are at
    ``min_resource * eta**(bracket + k)`` below ``max_resource``; a report at
    ``step`` enters each rung it has reached (a later report replaces an
    earlier one there only when it is no later than the one kept) and is
    pruned when it falls below the top ``1 / eta`` of any of them.
    """

    def __init__(
        self,
        direction: Direction,
        min_resource: int,
        eta: int,
        max_resource: int | None = None,
        brackets: int = 1,
    ) -> None:
        self.direction: Direction = direction
        self.min_resource, self.eta = min_resource, eta
        self.max_resource, self.brackets = max_resource, brackets
        # (bracket, resource) -> trial number -> (step, value)
        self.rungs: dict[tuple[int, int], dict[int, tuple[int, float]]] = {}

    def report(self, number: int, step: int, value: float) -> bool:
        """Whether the pruner should stop trial ``number`` on this report."""
        maximize = self.direction == "maximize"
        prune = False
        bracket = number % self.brackets
        resource = self.min_resource * self.eta**bracket
        while resource <= step and (self.max_resource is None or resource < self.max_resource):
            rung = self.rungs.setdefault((bracket, resource), {})
            if number not in rung or rung[number][0] >= step:
                rung[number] = (step, value)
                ranked = sorted((v for _, v in rung.values()), reverse=maximize)
                bar = ranked[max(1, len(ranked) // self.eta) - 1]
                prune |= value < bar if maximize else value > bar
            resource *= self.eta
        return prune
