"""API tokens: named, expiring, with a last-used time; only a digest stored; listed and revoked by their
owner (page and API) and by admins; all revoked on a password change (any path) and on deactivation."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.test import Client

from accounts import tokens
from accounts.models import ApiToken
from audit.models import AuditEvent
from core import clock
from tests.conftest import PASSWORD, client_for, make_user

pytestmark = pytest.mark.django_db


class QuickPBKDF2(PBKDF2PasswordHasher):
    iterations = 1000


API = "/api/v1"


@pytest.fixture
def frozen():
    with time_machine.travel(clock.now(), tick=False) as traveller:
        yield traveller


def obtain(client: Client, **extra):
    return client.post(
        f"{API}/auth/token/",
        {"username": "dev", "password": PASSWORD, **extra},
        content_type="application/json",
    )


def call(secret: str, path: str = "/sites/"):
    return Client().get(f"{API}{path}", HTTP_AUTHORIZATION=f"Token {secret}")


def test_the_endpoint_returns_a_named_expiring_token_and_stores_only_a_digest(cast, frozen):
    response = obtain(Client(), name="Nightly pipeline")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "name", "expires_at"} and body["name"] == "Nightly pipeline"
    row = ApiToken.objects.get()
    assert row.expires_at == clock.now() + timedelta(days=90)
    assert row.digest == hashlib.sha256(body["token"].encode()).hexdigest()
    assert body["token"] not in {row.digest, row.prefix, row.name} and body["token"].startswith(row.prefix)
    issued = AuditEvent.objects.get(action="accounts.token.issued")
    assert issued.actor_name == "dev" and issued.after["name"] == "Nightly pipeline"
    assert body["token"] not in str(issued.after)
    assert call(body["token"]).status_code == 200
    # Each call makes a new token; the default name says where it came from.
    assert obtain(Client()).json()["name"] == "API token"


def test_days_are_bounded(cast, settings):
    settings.API_TOKEN_MAX_DAYS = 30
    too_long = obtain(Client(), days=31)
    assert too_long.status_code == 400 and too_long.json()["code"] == "invalid"
    assert "days" in too_long.json()["fields"]
    assert obtain(Client(), days=0).status_code == 400
    assert obtain(Client(), days=30).status_code == 200


def test_expiry_with_a_moved_clock(cast, frozen):
    secret = obtain(Client(), days=7).json()["token"]
    frozen.shift(timedelta(days=7) - timedelta(seconds=1))
    assert call(secret).status_code == 200
    frozen.shift(timedelta(seconds=1))
    response = call(secret)
    assert response.status_code == 401
    assert response.json() == {
        "detail": "This token has expired; ask for a new one.",
        "code": "token_expired",
    }
    assert response["WWW-Authenticate"] == "Token"


def test_last_used_is_written_at_most_once_a_minute(cast, frozen):
    secret = obtain(Client()).json()["token"]
    row = ApiToken.objects.get()
    assert row.last_used_at is None
    call(secret)
    first = clock.now()
    assert ApiToken.objects.get().last_used_at == first
    frozen.shift(timedelta(seconds=30))
    call(secret)
    assert ApiToken.objects.get().last_used_at == first
    frozen.shift(timedelta(seconds=31))
    call(secret)
    assert ApiToken.objects.get().last_used_at == clock.now()


def test_unknown_and_malformed_tokens_are_401(cast):
    assert call("nope").json() == {"detail": "Invalid token.", "code": "authentication_failed"}
    bad = Client().get(f"{API}/sites/", HTTP_AUTHORIZATION="Token a b")
    assert bad.status_code == 401 and bad.json()["code"] == "authentication_failed"


def test_the_owner_lists_and_revokes_through_the_api(cast):
    dev_secret = obtain(Client(), name="one").json()["token"]
    other = Client().post(
        f"{API}/auth/token/", {"username": "tester", "password": PASSWORD}, content_type="application/json"
    )
    listed = call(dev_secret, "/auth/tokens/").json()
    assert [row["name"] for row in listed["results"]] == ["one"]
    assert set(listed["results"][0]) == {
        "id",
        "name",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "state",
    }
    mine = listed["results"][0]["id"]
    theirs = ApiToken.objects.get(user=cast["tester"]).pk
    delete = Client().delete(f"{API}/auth/tokens/{theirs}/", HTTP_AUTHORIZATION=f"Token {dev_secret}")
    assert delete.status_code == 404
    assert call(other.json()["token"]).status_code == 200
    gone = Client().delete(f"{API}/auth/tokens/{mine}/", HTTP_AUTHORIZATION=f"Token {dev_secret}")
    assert gone.status_code == 204
    response = call(dev_secret)
    assert response.status_code == 401 and response.json()["code"] == "token_revoked"
    revoked = AuditEvent.objects.get(action="accounts.token.revoked")
    assert revoked.actor_name == "dev" and revoked.reason == "revoked by its owner"


def _live(user) -> list[ApiToken]:
    return list(ApiToken.objects.filter(user=user, revoked_at__isnull=True))


def test_a_password_change_on_the_page_revokes_every_token(cast):
    secrets = [obtain(Client(), name=f"t{n}").json()["token"] for n in range(2)]
    client = client_for(cast["dev"])
    response = client.post(
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a-new-long-phrase-42",
            "new_password2": "a-new-long-phrase-42",
        },
    )
    assert response.status_code == 302
    assert not _live(cast["dev"])
    assert all(call(secret).status_code == 401 for secret in secrets)
    events = AuditEvent.objects.filter(action="accounts.token.revoked")
    assert events.count() == 2 and {e.reason for e in events} == {"password changed"}
    assert {e.actor_name for e in events} == {"dev"}


def test_set_password_and_save_revokes_too(cast):
    obtain(Client())
    dev = cast["dev"]
    dev.set_password("another-long-phrase-7")
    dev.save()
    assert not _live(dev)
    assert AuditEvent.objects.get(action="accounts.token.revoked").reason == "password changed"


def test_the_admins_password_form_revokes(cast):
    obtain(Client())
    admin = client_for(cast["admin"])
    response = admin.post(
        f"/admin/auth/user/{cast['dev'].pk}/password/",
        {"password1": "admin-set-phrase-99", "password2": "admin-set-phrase-99", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not _live(cast["dev"])
    event = AuditEvent.objects.get(action="accounts.token.revoked")
    assert event.actor_name == "admin" and event.reason == "password changed"


def test_a_hash_upgrade_at_sign_in_is_not_a_password_change(cast, settings):
    obtain(Client())
    # A new preferred hasher: Django re-hashes the password at the next sign-in.
    settings.PASSWORD_HASHERS = [
        f"{__name__}.QuickPBKDF2",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    before = type(cast["dev"]).objects.get(pk=cast["dev"].pk).password
    assert Client().post("/accounts/login/", {"username": "dev", "password": PASSWORD}).status_code == 302
    assert type(cast["dev"]).objects.get(pk=cast["dev"].pk).password != before  # re-hashed
    assert len(_live(cast["dev"])) == 1


def test_deactivation_revokes(cast):
    secret = obtain(Client()).json()["token"]
    dev = cast["dev"]
    dev.is_active = False
    dev.save(update_fields=["is_active"])
    assert not _live(dev)
    assert call(secret).status_code == 401
    assert AuditEvent.objects.get(action="accounts.token.revoked").reason == "account deactivated"
    # Saving other fields, or saving again, revokes nothing more and costs no extra query.
    dev.first_name = "Dana"
    dev.save()
    assert AuditEvent.objects.filter(action="accounts.token.revoked").count() == 1


def test_admins_see_and_revoke_anyones_tokens(cast):
    obtain(Client(), name="Dev's pipeline")
    admin = client_for(cast["admin"])
    listing = admin.get("/admin/accounts/apitoken/")
    assert listing.status_code == 200 and "Dev&#x27;s pipeline" in listing.content.decode()
    row = ApiToken.objects.get()
    assert row.digest not in admin.get(f"/admin/accounts/apitoken/{row.pk}/change/").content.decode()
    response = admin.post(
        "/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [row.pk]}, follow=True
    )
    assert "Revoked 1" in response.content.decode()
    event = AuditEvent.objects.get(action="accounts.token.revoked")
    assert event.actor_name == "admin" and event.reason == "revoked by an administrator"
    assert client_for(cast["dev"]).get("/admin/accounts/apitoken/").status_code == 302


def test_active_count_by_user_is_one_query(cast, django_assert_num_queries, frozen):
    for _ in range(2):
        tokens.issue(cast["dev"])
    tokens.issue(cast["tester"], days=1)
    expired = tokens.issue(cast["auditor"], days=1)[0]
    revoked = tokens.issue(cast["admin"])[0]
    tokens.revoke(revoked, actor=cast["admin"], reason="test")
    frozen.shift(timedelta(hours=1))
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=clock.now())
    ids = [cast[name].pk for name in ("dev", "tester", "auditor", "admin", "nobody")]
    with django_assert_num_queries(1):
        counts = tokens.active_count_by_user(ids)
    assert counts == {cast["dev"].pk: 2, cast["tester"].pk: 1}


def test_the_tokens_page(cast, frozen):
    client = client_for(cast["dev"])
    page = client.get("/accounts/tokens/")
    assert page.status_code == 200 and "You have no API tokens" in page.content.decode()
    assert 'href="/accounts/tokens/"' in page.content.decode()  # the user menu links it
    made = client.post("/accounts/tokens/", {"name": "Deploy script", "days": "30"})
    assert made.status_code == 200 and made["Cache-Control"] == "no-store"
    html = made.content.decode()
    row = ApiToken.objects.get()
    assert "shown only this once" in html and row.expires_at == clock.now() + timedelta(days=30)
    secret = html.split('id="id_secret" value="', 1)[1].split('"', 1)[0]
    assert hashlib.sha256(secret.encode()).hexdigest() == row.digest
    assert secret not in client.get("/accounts/tokens/").content.decode()  # never shown again
    assert call(secret).status_code == 200

    bad = client.post("/accounts/tokens/", {"name": "", "days": "100000"})
    assert bad.status_code == 400 and ApiToken.objects.count() == 1

    revoke = client.post(f"/accounts/tokens/{row.pk}/revoke/", follow=True)
    assert "is revoked" in revoke.content.decode() and call(secret).status_code == 401
    assert ">revoked<" in revoke.content.decode()
    other = make_user("other")
    assert client_for(other).post(f"/accounts/tokens/{row.pk}/revoke/").status_code == 404


def test_the_schema_documents_the_token_scheme(cast):
    schema = client_for(cast["dev"]).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert schema["components"]["securitySchemes"]["tokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": schema["components"]["securitySchemes"]["tokenAuth"]["description"],
    }
    assert "/api/v1/auth/tokens/{id}/" in schema["paths"]
    assert "429" in schema["paths"]["/api/v1/auth/token/"]["post"]["responses"]
