"""Refusals every entry point understands: pages show the message, the API maps the status."""


class StateConflict(Exception):
    """The object is not in a state that allows this (HTTP 409)."""

    code = "state_conflict"


class RuleViolation(Exception):
    """A gate or rule says no (HTTP 422); `rule` names it."""

    code = "rule"

    def __init__(self, message: str, rule: str = "", failed: list | None = None):
        super().__init__(message)
        self.rule = rule
        self.failed = failed or []
