"""LDAP / Active Directory sign-in through django-auth-ldap (the optional `ldap` extra: python-ldap
builds against libldap and libsasl, which a fresh machine may not have; nothing imports this module
unless LDAP_SERVER_URI is set).

Configured from plain settings (LDAP_*) built into django-auth-ldap's objects here. Users are found
by a search (LDAP_USER_SEARCH_BASE + LDAP_USER_SEARCH_FILTER, bound as LDAP_BIND_DN) or a DN
template (LDAP_USER_DN_TEMPLATE). Groups, by LDAP_GROUP_TYPE:
- "groupOfNames" (OpenLDAP and most directories): groupOfNames entries under
  LDAP_GROUP_SEARCH_BASE whose `member` is the user;
- "activeDirectory": AD `group` entries under LDAP_GROUP_SEARCH_BASE whose `member` is the user
  (nested groups followed);
- "memberOf": the user's own `memberOf` attribute (AD, or OpenLDAP with the memberof overlay); no
  group search.
A group matches a DirectoryGroupMapping (source=ldap) by its name (cn) or its full DN.
"""

from __future__ import annotations

import logging

import ldap
from django.conf import settings
from django_auth_ldap.backend import LDAPBackend, LDAPSettings, ldap_error
from django_auth_ldap.config import (
    GroupOfNamesType,
    LDAPSearch,
    NestedActiveDirectoryGroupType,
)

from . import directory
from .forms import UNREACHABLE_ATTR
from .models import DirectorySource

logger = logging.getLogger(__name__)

BACKEND = "accounts.ldap_auth.PortalLDAPBackend"
GROUP_TYPES = ("groupOfNames", "activeDirectory", "memberOf")


def _django_auth_ldap_defaults() -> dict:
    group_type = settings.LDAP_GROUP_TYPE
    config = {
        "SERVER_URI": settings.LDAP_SERVER_URI,
        "BIND_DN": settings.LDAP_BIND_DN,
        "BIND_PASSWORD": settings.LDAP_BIND_PASSWORD,
        "START_TLS": settings.LDAP_START_TLS,
        "CONNECTION_OPTIONS": {
            ldap.OPT_NETWORK_TIMEOUT: settings.LDAP_TIMEOUT_SECONDS,
            ldap.OPT_TIMEOUT: settings.LDAP_TIMEOUT_SECONDS,
            ldap.OPT_REFERRALS: 0,
        },
        "USER_ATTR_MAP": {
            "first_name": settings.LDAP_ATTR_FIRST_NAME,
            "last_name": settings.LDAP_ATTR_LAST_NAME,
            "email": settings.LDAP_ATTR_EMAIL,
        },
        # "+" brings the operational attributes, among them entryUUID.
        "USER_ATTRLIST": ["*", "+"],
        "ALWAYS_UPDATE_USER": True,
        "MIRROR_GROUPS": False,
        "FIND_GROUP_PERMS": False,
        "CACHE_TIMEOUT": 0,
    }
    if settings.LDAP_USER_DN_TEMPLATE:
        config["USER_DN_TEMPLATE"] = settings.LDAP_USER_DN_TEMPLATE
    else:
        config["USER_SEARCH"] = LDAPSearch(
            settings.LDAP_USER_SEARCH_BASE, ldap.SCOPE_SUBTREE, settings.LDAP_USER_SEARCH_FILTER, ["*", "+"]
        )
    if group_type == "groupOfNames":
        config["GROUP_SEARCH"] = LDAPSearch(
            settings.LDAP_GROUP_SEARCH_BASE, ldap.SCOPE_SUBTREE, "(objectClass=groupOfNames)"
        )
        config["GROUP_TYPE"] = GroupOfNamesType()
    elif group_type == "activeDirectory":
        config["GROUP_SEARCH"] = LDAPSearch(
            settings.LDAP_GROUP_SEARCH_BASE, ldap.SCOPE_SUBTREE, "(objectClass=group)"
        )
        config["GROUP_TYPE"] = NestedActiveDirectoryGroupType()
    return config


def _cn(dn: str) -> str:
    try:
        first = ldap.dn.str2dn(dn)[0]
    except ldap.DECODING_ERROR:
        return ""
    return next((value for attr, value, _ in first if attr.lower() == "cn"), "")


def _subject(ldap_user) -> str:
    attrs = ldap_user.attrs or {}
    values = attrs.get(settings.LDAP_UID_ATTR.lower()) or attrs.get(settings.LDAP_UID_ATTR)
    if values:
        value = values[0]
        return value.hex() if isinstance(value, bytes) else str(value)
    return ldap_user.dn.lower()  # no stable id published: the DN, so a rename makes a new user


def user_groups(ldap_user) -> list[str]:
    """The user's groups, each as its DN and its name."""
    if settings.LDAP_GROUP_TYPE == "memberOf":
        attrs = ldap_user.attrs or {}
        dns = list(attrs.get("memberof", []) or attrs.get("memberOf", []))
        names = [_cn(dn) for dn in dns]
    else:
        dns = list(ldap_user.group_dns)
        names = list(ldap_user.group_names)
    return sorted({item for item in dns + names if item})


class PortalLDAPBackend(LDAPBackend):
    @property
    def settings(self):
        if self._settings is None:
            self._settings = LDAPSettings(self.settings_prefix, _django_auth_ldap_defaults())
        return self._settings

    @settings.setter
    def settings(self, value):
        self._settings = value

    def get_or_build_user(self, username, ldap_user):
        subject = _subject(ldap_user)
        user = directory.find_user(DirectorySource.LDAP, "", subject)
        if user is not None:
            if (
                user.username != username
                and not self.get_user_model()
                .objects.filter(username__iexact=username)
                .exclude(pk=user.pk)
                .exists()
            ):
                user.username = username  # renamed in the directory: the same person, the new name
            return user, False
        model = self.get_user_model()
        if model.objects.filter(username__iexact=username).exists():
            # A local account of that name is not the directory's to take over.
            logger.warning("LDAP user %s matches a local account of that name; refused", username)
            raise ldap_user.AuthenticationFailed("a local account has this username")
        return model(username=username), True

    def authenticate_ldap_user(self, ldap_user, password):
        user = super().authenticate_ldap_user(ldap_user, password)
        if user is None or not user.is_active:
            return None
        try:
            groups = user_groups(ldap_user)
        except ldap.LDAPError as exc:
            logger.warning("LDAP group lookup failed for %s: %s", user.username, exc)
            _mark_unreachable(ldap_user._request)
            return None  # fail closed: no sign-in with unknown roles
        identity = directory.link_identity(
            user, DirectorySource.LDAP, "", _subject(ldap_user), ldap_user._username
        )
        identity.username_at_source = ldap_user._username[:255]
        directory.signed_in(user, identity, groups)
        return user


def _mark_unreachable(request) -> None:
    if request is not None:
        setattr(request, UNREACHABLE_ATTR, True)


def _on_ldap_error(sender, context, user, request, exception, **kwargs):
    """django-auth-ldap swallows a server error into a failed login: remember it on the request,
    so the login page can say the directory is unreachable rather than "wrong password"."""
    if context in ("authenticate", "search_for_user_dn", "populate_user"):
        _mark_unreachable(request)


ldap_error.connect(_on_ldap_error, dispatch_uid="accounts-ldap-unreachable")
