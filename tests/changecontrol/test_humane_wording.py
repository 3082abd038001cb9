"""Pages speak to people (issue 18 item 2): times as a person says them, and every audit action in
words on the pages — the codes stay in the exports and in the page's markup."""

from __future__ import annotations

from datetime import timedelta

import pytest

from audit.actions import LABELS, label
from core.humanize import ago


@pytest.mark.parametrize(
    ("age", "said"),
    [
        (timedelta(seconds=5), "just now"),
        (timedelta(minutes=1), "1 minute ago"),
        (timedelta(minutes=59), "59 minutes ago"),
        (timedelta(hours=1), "1 hour ago"),
        (timedelta(hours=23, minutes=59), "23 hours ago"),
        (timedelta(days=1, hours=5), "yesterday"),
        (timedelta(days=29, hours=23), "29 days ago"),
        (timedelta(seconds=-30), "just now"),
    ],
)
def test_ago_reads_like_a_person(age, said):
    assert ago(age) == said


def test_every_action_has_words():
    assert label("releases.rfc.uat_signed_off") == "RFC UAT signed off"
    assert label("environments.environment.updated") == "Environment updated"
    assert label("accounts.mfa.enrolled") == LABELS["accounts.mfa.enrolled"]
    for name in LABELS:
        assert "." not in label(name) or " " in label(name), name
