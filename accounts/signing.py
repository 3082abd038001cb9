"""The password at a signature (and any other re-entered password): the lockout first, then Django's
authentication backends, so a directory backend checks a signature's password as it checks a sign-in."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from django.contrib import auth
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy

from accounts import lockout
from core.clientip import client_ip
from core.context import current_context


def request_address(request=None) -> str | None:
    """The client address of `request`, or of the request this work runs for."""
    if request is None:
        context = current_context()
        if context is None:
            return None
        return context.ip_address
    return client_ip(request)


def backends_accept(request, username: str, password: str):
    """The user the configured backends authenticate for these credentials, or None.

    `django.contrib.auth.authenticate`'s loop over the backends, without its login signals: a
    signature's password is not a sign-in."""
    for backend in auth.get_backends():
        try:
            inspect.signature(backend.authenticate).bind(request, username=username, password=password)
        except (AttributeError, TypeError):
            continue
        try:
            user = backend.authenticate(request, username=username, password=password)
        except PermissionDenied:
            return None
        if user is not None:
            return user
    return None


@dataclass(frozen=True)
class Refused:
    reason: str  # for the audit trail: "wrong password", "account locked", "address locked"
    message: str  # for the person (no final stop: the caller says what was not done)


WRONG_PASSWORD = Refused("wrong password", gettext_lazy("The password is not correct"))


def _locked(lock: lockout.Lock) -> Refused:
    return Refused(f"{lock.scope} locked", lock.message)


def check_password(user, password: str, request=None, *, entry: str = "signature") -> Refused | None:
    """Is `password` the signer's own? None when it is; else why not. Counts towards the lockout."""
    username = user.get_username()
    address = request_address(request)
    try:
        lockout.check(username, address, entry=entry)
    except lockout.Locked as locked:
        return _locked(locked.lock)
    if not password:  # nothing typed: refused, but not a guess
        return WRONG_PASSWORD
    if request is None and current_context() is not None:
        request = current_context().request
    found = backends_accept(request, username, password)
    if found is None or found.pk != user.pk:
        lock = lockout.failed(username, address, entry=entry)
        return _locked(lock) if lock else WRONG_PASSWORD
    lockout.succeeded(username)
    return None
