"""Notifications (issue 15 item 2): the recipients table, preferences and mutes, multipart mail with
thread headers, and the events the workflow and the deployments emit."""

from __future__ import annotations

import email
import email.policy

import pytest
from django.db import transaction
from django.urls import reverse

from audit.models import AuditEvent
from deployments.states import DeploymentState as S
from deployments.states import move
from environments.models import Tier
from notify import events, recipients, watchers
from notify.models import Mute, Notice, Preference, Watcher
from outbox import services as outbox
from outbox.models import Mail
from releases.models import Rfc
from releases.states import RfcState
from tests import factories
from tests.conftest import client_for, make_user
from workflow import services as wf


def mails_to(username: str, kind: str | None = None) -> list[Mail]:
    rows = Mail.objects.filter(kind__startswith="notify.").order_by("id")
    rows = [m for m in rows if m.to == [f"{username}@plant.test"]]
    return [m for m in rows if kind is None or m.kind == f"notify.{kind}"]


def parsed(mail: Mail) -> email.message.EmailMessage:
    return email.message_from_bytes(outbox.message(mail).message().as_bytes(), policy=email.policy.default)


@pytest.fixture
def world(people, site_a):
    """An RFC signed by its chain, a watcher, a person to mention and an outsider."""
    rfc = factories.sign_chain(people, factories.ready_rfc(people["dev"], people["tester"], site_a))
    watcher = make_user("wanda")
    watchers.watch(watcher, rfc)
    mentioned = make_user("mona")
    Mail.objects.all().delete()
    Notice.objects.all().delete()
    assert {s.signer.username for s in rfc.signatures.all()} == {"itmanager"}
    return {"rfc": rfc, "watcher": watcher, "mentioned": mentioned, **people}


EXPECTED = {
    recipients.AUTHOR: {"dev"},
    recipients.APPROVERS: {"itmanager"},  # a patch needs the IT manager's signature alone
    recipients.RELEASE_MANAGERS: {"releasemgr"},
    recipients.WATCHERS: {"wanda", "dev"},  # the author watches from the submission
    recipients.MENTIONED: {"mona"},
}


def test_the_table_names_every_kind_and_only_known_audiences():
    assert set(recipients.TABLE) == set(events.KINDS)
    known = {recipients.AUTHOR, recipients.APPROVERS, recipients.RELEASE_MANAGERS}
    known |= {recipients.WATCHERS, recipients.MENTIONED}
    assert all(audiences <= known for audiences in recipients.TABLE.values())


@pytest.mark.parametrize("kind", sorted(events.KINDS))
def test_who_is_told_of_each_kind(world, kind):
    """Exactly the audiences of the table, by name; the actor of the act is never told."""
    event = events.Event(events.KINDS[kind], world["rfc"], people={"mentioned": [world["mentioned"]]})
    expected = set().union(*(EXPECTED[a] for a in recipients.TABLE[kind]))
    # Release managers hold the role everywhere; approvers are the four signers.
    assert {user.username for user, _ in recipients.people(event).values()} == expected
    event.actor = world["dev"]
    assert "dev" not in {user.username for user, _ in recipients.people(event).values()}


def test_the_author_hears_of_the_approval_with_a_multipart_threaded_mail(world, settings):
    settings.NOTIFY_FROM_EMAIL = "Plant Change Control <change@plant.example>"
    settings.SITE_URL = "https://change.plant.example"
    rfc = world["rfc"]
    with transaction.atomic():
        events.emit("rfc.approved", rfc)
        events.emit("rfc.scheduled", rfc, actor=world["releasemgr"])
    approved, scheduled = mails_to("dev", "rfc.approved")[0], mails_to("dev", "rfc.scheduled")[0]
    first, second = parsed(approved), parsed(scheduled)
    assert first["From"] == "Plant Change Control <change@plant.example>"
    assert first["Auto-Submitted"] == "auto-generated"
    assert approved.subject == f"[{rfc.number}] {rfc.title} — RFC approved"
    assert first["Subject"].strip() == approved.subject
    assert first["Message-ID"] != second["Message-ID"]
    thread = f"<rfc-{rfc.uuid}@change.plant.example>"
    assert first["References"] == second["References"] == first["In-Reply-To"] == thread
    text = first.get_body(preferencelist=("plain",)).get_content()
    html = first.get_body(preferencelist=("html",)).get_content()
    link = f"https://change.plant.example/rfcs/{rfc.uuid}/"
    assert link in text and f'href="{link}"' in html
    assert "RFC approved" in text and "RFC approved" in html
    assert "<" not in text.replace("<rfc", "")  # the text part carries no markup
    assert "By: Rita" not in text  # no actor: the portal itself approved it (last signature)
    notice = Notice.objects.get(user=world["dev"], kind="rfc.approved")
    assert notice.mail_id == approved.pk and notice.audiences == ["author", "watchers"]


def test_preferences_nothing_chat_and_mute(world, monkeypatch):
    rfc = world["rfc"]
    Preference.objects.create(user=world["dev"], kind="rfc.approved", channel="none")
    Preference.objects.create(user=world["releasemgr"], kind="rfc.approved", channel="chat")
    Mute.objects.create(user=world["watcher"], rfc=rfc)
    with transaction.atomic():
        events.emit("rfc.approved", rfc)
    # No chat address: chat falls back to mail.
    assert not mails_to("dev") and not mails_to("wanda")
    assert len(mails_to("releasemgr", "rfc.approved")) == 1
    heard = []
    monkeypatch.setitem(
        events.CHANNELS, "chat", lambda user, event: heard.append((user.username, event.key)) or True
    )
    with transaction.atomic():
        events.emit("rfc.approved", rfc)
    assert heard == [("releasemgr", "rfc.approved")]
    assert len(mails_to("releasemgr", "rfc.approved")) == 1  # not mailed again


def test_a_failed_rollback_reaches_people_who_muted_or_chose_nothing(world):
    rfc = world["rfc"]
    Preference.objects.create(user=world["dev"], kind="deployment.rollback_failed", channel="none")
    Mute.objects.create(user=world["dev"], rfc=rfc)
    with transaction.atomic():
        events.emit("deployment.rollback_failed", rfc)
    mail = mails_to("dev", "deployment.rollback_failed")
    assert len(mail) == 1 and mail[0].subject.startswith("[URGENT] ")


def test_nothing_is_told_when_the_act_rolls_back(world):
    with pytest.raises(RuntimeError), transaction.atomic():
        events.emit("rfc.approved", world["rfc"])
        raise RuntimeError("the act failed")
    assert not Mail.objects.filter(kind__startswith="notify.").exists()
    assert not Notice.objects.exists()


# --- From real transitions and deployment moves -----------------------------------------------------
def test_submitting_makes_the_author_a_watcher_and_approval_tells_them(people, site_a):
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a)
    factories.sign_chain(people, rfc)
    assert Watcher.objects.filter(rfc=rfc, user=people["dev"], reason="author").exists()
    assert not mails_to("dev", "rfc.submitted")  # the author submitted it: they know
    assert len(mails_to("dev", "rfc.approved")) == 1
    assert len(mails_to("releasemgr", "rfc.approved")) == 1


def test_a_rejection_tells_the_author_with_the_reason(people, site_a):
    from approvals.models import Approval, ApprovalState
    from tests.conftest import PASSWORD

    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a)
    wf.submit(people["dev"], rfc)
    approval = Approval.objects.get(rfc=rfc, state=ApprovalState.PENDING)
    wf.sign(people["itmanager"], approval, "reject", PASSWORD, "The rollback plan skips the label printer.")
    mail = mails_to("dev", "rfc.rejected")
    assert len(mail) == 1
    assert "The rollback plan skips the label printer." in mail[0].body


@pytest.mark.parametrize(
    "path,kinds",
    [
        ([S.RUNNING, S.VERIFYING, S.SUCCEEDED], ["deployment.started", "deployment.succeeded"]),
        ([S.RUNNING, S.ROLLING_BACK, S.ROLLED_BACK], ["deployment.started", "deployment.rolled_back"]),
        (
            [S.RUNNING, S.ROLLING_BACK, S.ROLLBACK_FAILED],
            ["deployment.started", "deployment.rollback_failed"],
        ),
        ([S.FAILED], ["deployment.failed"]),
    ],
)
def test_the_author_learns_every_outcome_of_a_prod_deployment(cast, site_a, path, kinds):
    rfc = factories.rfc(cast["dev"], site_a)
    Rfc.objects.filter(pk=rfc.pk).update(state=RfcState.SCHEDULED)
    deployment = factories.booking(rfc, site_a, cast["releasemgr"])
    for target in path:
        move(
            deployment, target, outcome=f"smoke test said {target}", rpo={"how": "undo script", "kept": True}
        )
    # Every path here ends the deployment: the review is due next (tests/workflow/test_reviews.py).
    assert [m.kind.removeprefix("notify.") for m in mails_to("dev")] == [*kinds, "review.due"]
    assert [m.kind.removeprefix("notify.") for m in mails_to("releasemgr")] == [*kinds, "review.due"]
    last = mails_to("dev")[-2]
    assert f"/rfcs/{rfc.uuid}/deployments/{deployment.uuid}/" in last.body
    if path[-1] != S.RUNNING:
        assert f"smoke test said {path[-1]}" in last.body


def test_uat_deployments_tell_no_one(cast, site_a):
    rfc = factories.rfc(cast["dev"], site_a)
    uat = factories.booking(rfc, site_a, cast["releasemgr"], tier=Tier.UAT)
    move(uat, S.RUNNING)
    assert not Mail.objects.filter(kind__startswith="notify.").exists()


# --- Pages ---------------------------------------------------------------------------------------------
def test_the_settings_page_saves_changes_and_audits_them(cast):
    client = client_for(cast["dev"])
    page = client.get(reverse("notify:settings"))
    assert page.status_code == 200
    assert page.content.decode().count('type="radio"') == 3 * len(events.KINDS)
    response = client.post(reverse("notify:settings"), {"rfc.approved": "chat", "comment.added": "none"})
    assert response.status_code == 302
    assert dict(Preference.objects.filter(user=cast["dev"]).values_list("kind", "channel")) == {
        "rfc.approved": "chat",
        "comment.added": "none",
    }
    event = AuditEvent.objects.get(action="notify.preferences.changed")
    assert event.after == {"rfc.approved": "chat", "comment.added": "none"}
    assert event.before == {"rfc.approved": "mail", "comment.added": "mail"}
    # Saving the same again changes nothing and writes nothing.
    client.post(reverse("notify:settings"), {"rfc.approved": "chat", "comment.added": "none"})
    assert AuditEvent.objects.filter(action="notify.preferences.changed").count() == 1


@pytest.mark.parametrize("value", ["fax", "", "mail\r\nBcc: x", "x" * 5000])
def test_a_bad_choice_is_a_400_and_saves_nothing(cast, value):
    response = client_for(cast["dev"]).post(reverse("notify:settings"), {"rfc.approved": value})
    assert response.status_code == 400
    assert "choose mail, chat or nothing" in response.content.decode()
    assert not Preference.objects.exists()


def test_follow_and_mute_from_the_rfc_page(cast, site_a, site_b):
    rfc = factories.rfc(cast["dev"], site_a)
    client = client_for(cast["itmanager"])
    assert b"Follow this RFC" in client.get(reverse("releases:detail", args=[rfc.uuid])).content
    assert client.post(reverse("notify:watch", args=[rfc.uuid])).status_code == 302
    assert client.post(reverse("notify:mute", args=[rfc.uuid])).status_code == 302
    page = client.get(reverse("releases:detail", args=[rfc.uuid])).content.decode()
    assert "Stop following" in page and "Unmute" in page
    assert Watcher.objects.filter(rfc=rfc, user=cast["itmanager"]).exists()
    assert Mute.objects.filter(rfc=rfc, user=cast["itmanager"]).exists()
    actions = list(
        AuditEvent.objects.filter(action__startswith="notify.rfc.")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["notify.rfc.watched", "notify.rfc.muted"]
    # Someone who may not see the RFC cannot follow it.
    outsider = make_user("outsider_b", site=site_b)
    assert client_for(outsider).post(reverse("notify:watch", args=[rfc.uuid])).status_code == 404
    assert client.get(reverse("notify:watch", args=[rfc.uuid])).status_code == 405


def test_approval_requests_are_multipart_in_the_rfcs_thread(people, site_a, settings):
    settings.SITE_URL = "https://change.plant.example"
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a)
    wf.submit(people["dev"], rfc)
    from approvals import mail as approval_mail

    approval_mail.send_notifications()
    request = Mail.objects.get(kind="approvals.request", to=["itmanager@plant.test"])
    message = parsed(request)
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["References"] == f"<rfc-{rfc.uuid}@change.plant.example>"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    link = next(word for word in text.split() if "/approvals/link/" in word)
    assert f'href="{link}"' in html


@pytest.mark.parametrize("watch_it, mute_it", [(False, False), (True, False), (False, True), (True, True)])
def test_the_rfc_page_reads_following_and_muted_in_one_query(people, site_a, watch_it, mute_it):
    """Issue 15 item 2: what the RFC page's follow and mute buttons show, asked in one statement."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notify import watchers

    rfc = factories.rfc(people["dev"], site_a)
    user = people["itmanager"]
    if watch_it:
        watchers.watch(user, rfc)
    if mute_it:
        watchers.mute(user, rfc)
    with CaptureQueriesContext(connection) as seen:
        assert watchers.state(user, rfc) == {"watching": watch_it, "muted": mute_it}
    assert len(seen.captured_queries) == 1
