"""Comments and watchers (issue 15 item 5): @mentions tell people and make them watchers, comments sit
in the RFC's timeline among the audit events, and an edit keeps the words it replaced."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from core import clock
from core.roles import Role
from discussion import services
from discussion.models import Comment, CommentRevision
from notify.models import Notice, Watcher
from outbox.models import Mail
from tests import factories
from tests.conftest import client_for, make_user


@pytest.mark.parametrize(
    "body,names",
    [
        ("@bob please look", ["bob"]),
        ("Thanks @Bob, and @bob again.", ["Bob"]),
        ("mail a@b.c or bob@plant.test", []),
        ("@@bob", []),
        ("(@carol) and @dave.", ["carol", "dave"]),
        ("line one\n@erin_k-2 line two", ["erin_k-2"]),
        ("no mention here", []),
    ],
)
def test_mention_parsing(body, names):
    assert services.mentioned_names(body) == names


@pytest.fixture
def rfc(cast, site_a):
    return factories.rfc(cast["dev"], site_a)


def test_a_comment_with_a_mention_tells_and_makes_watchers(cast, site_a, site_b, rfc):
    outsider = make_user("olga", Role.IT_MANAGER, site=site_b)  # cannot see a site A RFC
    watcher = make_user("wanda")
    Watcher.objects.create(rfc=rfc, user=watcher)
    comment, mentions = services.add(
        cast["releasemgr"], rfc, "@ITManager can you check the printer timeout? cc @olga @ghost"
    )
    assert [u.username for u in mentions.told] == ["itmanager"]
    assert mentions.not_told == ["olga", "ghost"]
    assert comment.mentions == ["itmanager"]
    watching = dict(Watcher.objects.filter(rfc=rfc).values_list("user__username", "reason"))
    assert watching == {"wanda": "chose", "releasemgr": "commented", "itmanager": "mentioned"}
    told = sorted(Notice.objects.values_list("user__username", "kind"))
    assert told == [("dev", "comment.added"), ("itmanager", "comment.mentioned"), ("wanda", "comment.added")]
    mail = Mail.objects.get(kind="notify.comment.mentioned")
    assert "can you check the printer timeout" in mail.body and f"/rfcs/{rfc.uuid}/#timeline" in mail.body
    event = AuditEvent.objects.get(action="discussion.comment.added")
    assert event.object_id == rfc.number and event.after["mentions"] == ["itmanager"]
    assert not Notice.objects.filter(user=outsider).exists()


@pytest.mark.parametrize("body", ["", "   \n ", "x" * 10_001])
def test_bad_comments_are_refused_and_write_nothing(cast, rfc, body):
    with pytest.raises(ValidationError):
        services.add(cast["dev"], rfc, body)
    assert (
        not Comment.objects.exists()
        and not AuditEvent.objects.filter(action__startswith="discussion").exists()
    )


def test_the_page_refuses_bad_input_without_a_500(cast, rfc):
    client = client_for(cast["dev"])
    url = reverse("releases:comment_add", args=[rfc.uuid])
    assert client.post(url, {"body": "a\x00b"}).status_code == 400  # the input guard
    response = client.post(url, {"body": "  "}, follow=True)
    assert response.status_code == 200 and "Write something to comment." in response.content.decode()
    assert not Comment.objects.exists()
    assert client.get(url).status_code == 405


def test_someone_who_cannot_see_the_rfc_cannot_comment(cast, site_b, rfc):
    outsider = make_user("olga", Role.IT_MANAGER, site=site_b)
    with pytest.raises(PermissionDenied):
        services.add(outsider, rfc, "hello")
    assert (
        client_for(outsider)
        .post(reverse("releases:comment_add", args=[rfc.uuid]), {"body": "hi"})
        .status_code
        == 404
    )


def test_an_edit_keeps_history_and_only_the_author_edits(cast, rfc):
    comment, _ = services.add(cast["dev"], rfc, "Deploy on Tuesday.")
    with pytest.raises(PermissionDenied):
        services.edit(cast["releasemgr"], comment, "Deploy on Friday.")
    other = client_for(cast["releasemgr"]).post(
        reverse("releases:comment_edit", args=[rfc.uuid, comment.pk]), {"body": "rewritten"}
    )
    assert other.status_code == 403
    client = client_for(cast["dev"])
    response = client.post(
        reverse("releases:comment_edit", args=[rfc.uuid, comment.pk]), {"body": "Deploy on Wednesday."}
    )
    assert response.status_code == 302
    comment.refresh_from_db()
    assert comment.body == "Deploy on Wednesday." and comment.edited_at is not None
    assert list(CommentRevision.objects.values_list("body", flat=True)) == ["Deploy on Tuesday."]
    event = AuditEvent.objects.get(action="discussion.comment.edited")
    assert event.before["body"] == "Deploy on Tuesday." and event.after["body"] == "Deploy on Wednesday."
    history = client.get(reverse("releases:comment_history", args=[rfc.uuid, comment.pk])).content.decode()
    assert "Deploy on Tuesday." in history and "Deploy on Wednesday." in history
    page = client.get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    assert "(edited)" in page


def test_comments_sit_in_the_timeline_in_time_order(cast, rfc):
    start = clock.now()
    with time_machine.travel(start + timedelta(minutes=5), tick=False):
        services.add(cast["releasemgr"], rfc, "First question")
    with time_machine.travel(start + timedelta(minutes=10), tick=False):
        factories.wf.update_rfc(cast["dev"], rfc, title="A clearer title")
    with time_machine.travel(start + timedelta(minutes=15), tick=False):
        services.add(cast["dev"], rfc, "Answered in the title")
    page = client_for(cast["dev"]).get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    timeline = page.split('data-testid="timeline"')[1].split("</ol>")[0]
    first, edit, second = (
        timeline.index("First question"),
        timeline.index("releases.rfc"),
        timeline.index("Answered"),
    )
    assert first < second
    assert first < timeline.rindex("releases.rfc") < second  # the edit lies between the two comments
    assert edit < first


def test_the_rfc_page_does_not_grow_queries_with_comments(cast, rfc):
    client = client_for(cast["dev"])
    url = reverse("releases:detail", args=[rfc.uuid])
    services.add(cast["dev"], rfc, "one")
    client.get(url)
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    for n in range(20):
        services.add(cast["releasemgr"], rfc, f"comment {n} for @dev")
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many) == len(one)
