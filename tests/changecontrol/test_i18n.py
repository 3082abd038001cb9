"""English and German: the browser's preference by default, each person's own choice above it, dates
and numbers in the person's locale, mails in the recipient's language, the evidence pack in the
language of whoever generates it, and the audit export in neutral codes whatever the language.

Expected German text is looked up in the catalog (gettext under German), and asserted to differ from
the English, so these tests follow the catalog's wording but fail if a page is not translated."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime

import pytest
import time_machine
from django.utils import translation

from accounts.models import Profile
from audit.models import AuditEvent
from releases.models import Rfc
from tests import factories
from tests.conftest import PASSWORD, client_for

pytestmark = pytest.mark.django_db
GERMAN = {"HTTP_ACCEPT_LANGUAGE": "de-DE,de;q=0.9,en;q=0.5"}
ENGLISH = {"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}


def german(text: str) -> str:
    with translation.override("de"):
        translated = translation.gettext(text)
    assert translated != text, f"{text!r} has no German translation"
    return translated


def lang_of(response) -> str:
    return re.search(r'<html lang="([^"]+)"', response.content.decode()).group(1)


def test_the_browser_preference_chooses_the_language_when_the_person_chose_none(client, db):
    page = client.get("/accounts/login/", **GERMAN)
    assert page.status_code == 200 and lang_of(page) == "de" and page["Content-Language"] == "de"
    assert german("Log in") in page.content.decode()
    english = client.get("/accounts/login/", **ENGLISH)
    assert lang_of(english) == "en-gb" and "Log in" in english.content.decode()
    # No preference at all: the portal's default, English.
    assert lang_of(client.get("/accounts/login/")) == "en-gb"


def test_a_person_s_choice_wins_over_the_browser_and_can_go_back_to_it(cast):
    client = client_for(cast["dev"])
    assert lang_of(client.get("/", **ENGLISH)) == "en-gb"
    saved = client.post("/accounts/language/", {"language": "de"}, follow=True, **ENGLISH)
    assert saved.status_code == 200 and lang_of(saved) == "de"
    assert Profile.objects.get(user=cast["dev"]).language == "de"
    home = client.get("/", **ENGLISH)
    assert lang_of(home) == "de" and german("Log out") in home.content.decode()

    client.post("/accounts/language/", {"language": ""}, **ENGLISH)
    assert Profile.objects.get(user=cast["dev"]).language == ""
    assert lang_of(client.get("/", **ENGLISH)) == "en-gb"
    assert lang_of(client.get("/", **GERMAN)) == "de"


def test_an_unknown_language_is_refused_and_changes_nothing(cast):
    client = client_for(cast["dev"])
    refused = client.post("/accounts/language/", {"language": "xx"}, **ENGLISH)
    assert refused.status_code == 400 and "Choose one of the languages offered." in refused.content.decode()
    assert not Profile.objects.filter(user=cast["dev"], language__gt="").exists()


def test_the_choice_follows_the_person_to_a_new_sign_in_and_the_browser_is_remembered(client, cast):
    Profile.objects.create(user=cast["dev"], language="de")
    client.post("/accounts/login/", {"username": "dev", "password": PASSWORD}, **ENGLISH)
    assert lang_of(client.get("/", **ENGLISH)) == "de"
    assert Profile.objects.get(user=cast["dev"]).browser_language == "en-gb"


def test_dates_and_validation_messages_follow_the_language(cast, site_a):
    with time_machine.travel(datetime(2026, 11, 30, 8, 5, tzinfo=UTC), tick=False):
        rfc = factories.rfc(cast["dev"], site_a)
    client = client_for(cast["dev"])
    english = client.get(f"/rfcs/{rfc.uuid}/", **ENGLISH).content.decode()
    deutsch = client.get(f"/rfcs/{rfc.uuid}/", **GERMAN).content.decode()
    assert "2026-11-30 08:05" in english and "30.11.2026 08:05" not in english
    assert "30.11.2026 08:05" in deutsch
    assert german("Summary") in deutsch and german("Description") in deutsch

    refused = client.post("/rfcs/new/", {"title": ""}, **GERMAN)
    assert refused.status_code == 400 and not Rfc.objects.exclude(pk=rfc.pk).exists()
    with translation.override("de"):
        required = translation.gettext("This field is required.")
    assert required == "Dieses Feld ist erforderlich." and required in refused.content.decode()


def test_numbers_use_the_german_decimal_comma(cast, settings):
    from django.template import Context, Template

    template = Template("{% load l10n %}{{ value|floatformat:1 }}")
    with translation.override("de"):
        assert template.render(Context({"value": 12.5})) == "12,5"
    with translation.override("en-gb"):
        assert template.render(Context({"value": 12.5})) == "12.5"


def test_an_approval_mail_reaches_each_approver_in_their_own_language(
    people, site_a, mailoutbox, monkeypatch
):
    from approvals import mail
    from core.roles import Role
    from tests.conftest import make_user
    from workflow import services as wf

    monkeypatch.setattr("approvals.mail.after_commit", lambda send: send())
    make_user("itmanager_en", Role.IT_MANAGER, site=site_a)
    Profile.objects.create(user_id=people["itmanager"].pk, browser_language="de")
    rfc = factories.ready_rfc(people["dev"], people["tester"], site_a)
    wf.submit(people["dev"], rfc)
    with translation.override("en-gb"):
        assert mail.send_notifications() >= 2
    by_person = {m.to[0]: m for m in mailoutbox}
    deutsch, english = by_person["itmanager@plant.test"], by_person["itmanager_en@plant.test"]
    assert english.subject.startswith("[Approval]")
    assert not deutsch.subject.startswith("[Approval]") and rfc.number in deutsch.subject
    assert german("Readiness gates:") in deutsch.body, deutsch.body
    assert "Readiness gates:" in english.body and german("Readiness gates:") not in english.body


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils' pdftotext is not installed")
def test_the_evidence_pack_speaks_the_language_of_whoever_generates_it(cast, site_a, tmp_path):
    rfc = factories.rfc(cast["dev"], site_a)
    client = client_for(cast["auditor"])
    texts = {}
    for name, headers in (("en", ENGLISH), ("de", GERMAN)):
        response = client.get(f"/rfcs/{rfc.uuid}/evidence-pack.pdf", **headers)
        assert response.status_code == 200, response.status_code
        pdf = tmp_path / f"{name}.pdf"
        pdf.write_bytes(b"".join(response.streaming_content) if response.streaming else response.content)
        texts[name] = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    assert "Evidence pack" in texts["en"]
    assert german("Evidence pack") in texts["de"] and "Evidence pack" not in texts["de"]


def test_the_audit_export_keeps_neutral_codes_in_german(cast, site_a):
    from audit.services import record

    rfc = factories.rfc(cast["dev"], site_a)
    record("releases.rfc.created", rfc, actor=cast["dev"])
    assert AuditEvent.objects.filter(action="releases.rfc.created").exists()
    client = client_for(cast["auditor"])
    english = client.get("/audit/export.csv", **ENGLISH)
    deutsch = client.get("/audit/export.csv", **GERMAN)
    assert english.status_code == deutsch.status_code == 200

    def body(response):
        return b"".join(response.streaming_content) if response.streaming else response.content

    english, deutsch = body(english), body(deutsch)
    assert english == deutsch and b"releases.rfc.created" in deutsch
