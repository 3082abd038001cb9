"""Saved RFC list filters (issue 17 item 3): a user names the list's current filters and keeps them
for themselves or shares them with everyone. What is kept is the list's own parameters, checked by
the RFC list's FilterSet when saved; opening a saved filter is opening the list with them, so the
page, the CSV/XLSX exports and the API all answer it the same way."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import Http404, QueryDict
from django.urls import reverse
from django.utils.translation import gettext

from core.inputs import no_line_breaks
from workflow.filters import RfcFilterSet
from workflow.models import SavedFilter

MAX_PER_USER = 50
NAME_MAX = 80


def kept_params() -> list[str]:
    """The list's parameters a saved filter keeps: every filter of the FilterSet (sorting included)."""
    return list(RfcFilterSet.base_filters)


def kept_query(params: QueryDict) -> str:
    """The list's current filters as a saved filter would keep them ("" when there are none)."""
    kept = QueryDict(mutable=True)
    for name in kept_params():
        value = params.get(name, "").strip()
        if value:
            kept[name] = value
    return kept.urlencode()


def clean_query(params: QueryDict, request=None) -> str:
    """The filters in `params` the FilterSet accepts, as a canonical query string; a refusal names
    what is wrong, and an empty filter is refused too (there is nothing to save)."""
    kept = QueryDict(kept_query(params))
    if not kept:
        raise ValidationError({"query": gettext("Filter the list first: there is nothing to save.")})
    filterset = RfcFilterSet(kept, request=request)
    if not filterset.is_valid():
        raise ValidationError(
            {"query": [f"{name}: {m}" for name, messages in filterset.form.errors.items() for m in messages]}
        )
    query = kept.urlencode()
    if len(query) > SavedFilter._meta.get_field("query").max_length:
        raise ValidationError({"query": gettext("These filters are too long to save.")})
    return query


def clean_name(name: str) -> str:
    name = " ".join(str(name or "").split()) if "\x00" not in str(name or "") else ""
    if not name:
        raise ValidationError({"name": gettext("Give the filter a name.")})
    if len(name) > NAME_MAX:
        raise ValidationError({"name": gettext("A name has at most %(max)s characters.") % {"max": NAME_MAX}})
    no_line_breaks(name)
    return name


def save(user, name: str, params: QueryDict, shared: bool = False, request=None) -> SavedFilter:
    """Keep the filters under `name`; a filter of the same name of the user's is replaced."""
    name, query = clean_name(name), clean_query(params, request)
    with transaction.atomic():
        existing = SavedFilter.objects.select_for_update().filter(owner=user, name=name).first()
        if existing is not None:
            existing.query, existing.shared = query, bool(shared)
            existing.save(update_fields=["query", "shared"])
            return existing
        if SavedFilter.objects.filter(owner=user).count() >= MAX_PER_USER:
            raise ValidationError(
                {
                    "name": gettext("You keep %(max)s filters already; delete one first.")
                    % {"max": MAX_PER_USER}
                }
            )
        try:
            with transaction.atomic():
                return SavedFilter.objects.create(owner=user, name=name, query=query, shared=bool(shared))
        except IntegrityError:  # the same name saved at the same moment in another tab
            raise ValidationError(
                {"name": gettext("A filter of that name was just saved; try again.")}
            ) from None


def visible(user):
    """The user's own filters and those others share, the user's first."""
    return (
        SavedFilter.objects.filter(Q(owner=user) | Q(shared=True))
        .select_related("owner")
        .order_by("name", "pk")
    )


def delete(user, pk: int) -> None:
    deleted, _ = SavedFilter.objects.filter(owner=user, pk=pk).delete()
    if not deleted:
        raise Http404("No such filter of yours.")


def address(saved: SavedFilter) -> str:
    return f"{reverse('releases:list')}?{saved.query}"
