from django.utils.functional import SimpleLazyObject

from accounts import mfa


def signing(request):
    """`signing.password` / `signing.code`: which fields a signing form asks of this user (looked up
    only by pages that show one); `mfa_pending`: the second step of the sign-in is not done yet."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "signing": SimpleLazyObject(lambda: mfa.signature_fields(user)),
        "mfa_pending": mfa.session_state(request) != mfa.OK,
    }
