"""The interface language: each person's choice, else the browser's preference (Accept-Language).

The choice is copied into the session at sign-in and when it changes, so a request costs no query.
Mails, which have no browser, go out in ``language_for(user)``: the choice, else the language of the
person's last browser, else the portal's default.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from accounts.models import Profile

SESSION_KEY = "pcc_language"


def supported(code: str | None) -> str:
    """A supported language code for ``code`` ('' when there is none)."""
    if not code:
        return ""
    try:
        return translation.get_supported_language_variant(code)
    except LookupError:
        return ""


def language_for(user) -> str:
    """The language to write to ``user`` in when no request is at hand (mails, reminders)."""
    if user is not None and getattr(user, "pk", None):
        profile = Profile.objects.filter(user_id=user.pk).values("language", "browser_language").first()
        if profile:
            return (
                supported(profile["language"])
                or supported(profile["browser_language"])
                or settings.LANGUAGE_CODE
            )
    return settings.LANGUAGE_CODE


def choose(request, user, language: str) -> str:
    """Save ``user``'s choice ('' = follow the browser) and apply it to this session at once."""
    language = supported(language)
    Profile.objects.update_or_create(user=user, defaults={"language": language})
    if language:
        request.session[SESSION_KEY] = language
    else:
        request.session.pop(SESSION_KEY, None)
    return language


@receiver(user_logged_in, dispatch_uid="accounts-language-login")
def _remember_on_login(sender, request, user, **kwargs):
    if request is None or not hasattr(request, "session"):
        return
    browser = supported(translation.get_language_from_request(request))
    profile, _created = Profile.objects.get_or_create(user=user)
    if browser and profile.browser_language != browser:
        Profile.objects.filter(pk=profile.pk).update(browser_language=browser)
    if supported(profile.language):
        request.session[SESSION_KEY] = profile.language
        translation.activate(profile.language)
        request.LANGUAGE_CODE = profile.language


class UserLanguageMiddleware:
    """After LocaleMiddleware (browser and cookie) and authentication: a signed-in person's own choice wins."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        chosen = session.get(SESSION_KEY) if session is not None else None
        if chosen and supported(chosen) and getattr(request, "user", None) and request.user.is_authenticated:
            translation.activate(chosen)
            request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)


def choices() -> list[tuple[str, str]]:
    """The Language page's options: follow the browser, or one of the portal's languages (each in its own name)."""
    return [("", gettext("As my browser asks"))] + [(code, name) for code, name in settings.LANGUAGES]


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def language_page(request):
    """GET: the person's choice; POST: save it (400 with the choices again for anything else)."""
    options = choices()
    profile = Profile.objects.filter(user=request.user).first()
    current = profile.language if profile else ""
    error = ""
    if request.method == "POST":
        wanted = request.POST.get("language", "")
        if wanted in {code for code, _name in options}:
            chosen = choose(request, request.user, wanted)
            translation.activate(chosen or translation.get_language_from_request(request))
            request.LANGUAGE_CODE = translation.get_language()
            messages.success(request, gettext("Language saved."))
            return redirect("accounts:language")
        error = gettext("Choose one of the languages offered.")
    browser = dict(settings.LANGUAGES).get(supported(translation.get_language_from_request(request)), "")
    return render(
        request,
        "accounts/language.html",
        {"options": options, "current": current, "browser": browser, "error": error},
        status=400 if error else 200,
    )
