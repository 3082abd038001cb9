"""Single sign-on in a browser: the login page's "Sign in with …" button, the real OpenID Provider's
own login and consent pages (node's oidc-provider, started by the test), and back on the portal home
signed in, with the roles the provider's groups map to at each site."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from accounts.models import DirectoryGroupMapping, DirectoryIdentity
from core.roles import Role
from environments import access
from tests.accounts import idp
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.oidc]


@pytest.fixture
def provider(live_server):
    server = idp._provider(live_server)
    yield server
    server.stop()


def test_sign_in_through_the_provider_page_lands_home_with_roles_per_site(
    page, settings, provider, live_server, transactional_db, site_a, site_b
):
    idp.configure(settings, provider.issuer)
    DirectoryGroupMapping.objects.create(source="oidc", group="mes-release", role=Role.RELEASE_MANAGER)
    DirectoryGroupMapping.objects.create(source="oidc", group="qa-pla", role=Role.IT_MANAGER, site=site_a)
    portal = live_server.url

    page.goto(f"{portal}/accounts/login/")
    button = page.get_by_role("link", name=f"Sign in with {idp.DISPLAY_NAME}")
    expect(button).to_be_visible()
    expect(page.get_by_label("Username")).to_be_visible()  # the local form stays for break-glass admins
    screenshot(page, "login-with-sso")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "login-with-sso-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    button.click()
    page.wait_for_url(re.compile(re.escape(provider.issuer) + r"/interaction/"))
    page.get_by_label("Login").fill("alice")
    page.get_by_label("Secret").fill("alice-idp-pw")
    page.get_by_role("button", name="Continue to the application").click()
    allow = page.get_by_role("button", name="Allow")
    allow.wait_for()
    allow.click()

    page.wait_for_url(f"{portal}/")
    menu = page.locator(".usermenu")
    expect(menu).to_contain_text("Alice Anders")
    expect(menu).to_contain_text("Release manager")
    expect(menu).to_contain_text("IT Manager")
    screenshot(page, "home-after-sso")

    alice = User.objects.get(directory_identities__subject="00u-alice-7f3a")
    access.forget(alice)
    assert alice.username == "alice" and not alice.has_usable_password()
    assert DirectoryIdentity.objects.get(user=alice).issuer == provider.issuer
    assert access.has_role(alice, Role.RELEASE_MANAGER)
    assert access.has_role(alice, Role.IT_MANAGER, site=site_a)
    assert not access.has_role(alice, Role.IT_MANAGER, site=site_b)

    page.get_by_role("button", name=re.compile("Log out", re.I)).click()
    page.wait_for_url(re.compile(r"/accounts/login/"))
