"""The FilterSets of the RFC lists and of the deployments list (DESIGN.md: one FilterSet per list,
shared by the page and the API, as netbox does).

The RFC list page (`workflow.views.rfc_list`) and `GET /api/v1/rfcs/` both filter with `RfcFilterSet`:
the same parameters, the same meaning, the same refusals. Its form is the page's filter bar; an input
the form refuses is a 400 in the API and an error message on the page, never a 500.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import get_language, gettext_lazy

from core.filters import SITE_CODE_MAX, TEXT_MAX, USERNAME_MAX
from environments import access
from releases.models import Impact, Rfc
from releases.states import OPEN_STATES, RfcState
from releases.versioning import ChangeClass
from workflow import metrics

OPEN = "open"


class CheckboxFilter(django_filters.BooleanFilter):
    """A tick box: absent or unticked means "no filter", ticked ("on", "true", "1") means filter."""

    field_class = forms.BooleanField


class FixedSelect(forms.Select):
    """A drop-down whose choices are fixed in code: its HTML for a (language, name, chosen value) is
    made once per process and reused, instead of a template rendered per option on every page. A value
    outside the choices (bad input) is rendered as usual and not kept, so what is kept stays small."""

    _made: dict[tuple, str] = {}

    def render(self, name, value, attrs=None, renderer=None):
        chosen = "" if value is None else str(value)
        if chosen and chosen not in {str(option) for option, _label in self.choices}:
            return super().render(name, value, attrs, renderer)
        key = (get_language(), name, chosen, tuple(sorted((attrs or {}).items())), type(renderer))
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().render(name, value, attrs, renderer)
        return made


class StableOrdering(django_filters.OrderingFilter):
    """Sorting by a column, ties broken by the newest first: a page never shows a row twice."""

    def filter(self, qs, value):
        qs = super().filter(qs, value)
        return qs.order_by(*qs.query.order_by, "-id") if value else qs


# Sortable columns: the parameter's name → the field (prefix "-" for descending, e.g. sort=-filed).
SORTS = {
    "number": "number",
    "title": "title",
    "class": "change_class",
    "state": "state",
    "filed": "created_at",
}


class RfcFilterForm(forms.Form):
    """Checks a dashboard figure's parameters together: the figure, and the period it counts in."""

    def clean(self):
        data = super().clean()
        if data.get("metric"):
            try:
                metrics.describe(data["metric"], strict=True)
                metrics.period(data.get("since"), data.get("until"), metrics.ZONE_UTC)
            except ValidationError as refused:
                for field, messages in refused.message_dict.items():
                    self.add_error(field if field in self.fields else None, messages)
        return data


class RfcFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search",
        label=gettext_lazy("Search"),
        max_length=TEXT_MAX,
        help_text="Text in the number, title, description or product (case-insensitive).",
        widget=forms.TextInput(
            attrs={"placeholder": gettext_lazy("Number, title, description or product"), "type": "search"}
        ),
    )
    state = django_filters.ChoiceFilter(
        method="filter_state",
        label=gettext_lazy("State"),
        choices=[(OPEN, gettext_lazy("Open")), *RfcState.choices],
        empty_label=gettext_lazy("Any state"),
        widget=FixedSelect,
        help_text='A state, or "open" for every state that is not finished.',
    )
    site = django_filters.CharFilter(
        method="filter_site", max_length=SITE_CODE_MAX, help_text="Site code: RFCs with an impact there."
    )
    change_class = django_filters.ChoiceFilter(
        field_name="change_class",
        choices=ChangeClass.choices,
        label=gettext_lazy("Class"),
        empty_label=gettext_lazy("Any class"),
        widget=FixedSelect,
    )
    author = django_filters.CharFilter(
        field_name="author__username",
        lookup_expr="iexact",
        label=gettext_lazy("Author"),
        max_length=USERNAME_MAX,
        help_text="The author's username (case-insensitive).",
        widget=forms.TextInput(attrs={"placeholder": gettext_lazy("Author's username")}),
    )
    mine = CheckboxFilter(
        method="filter_mine", label=gettext_lazy("Only mine"), help_text="Only the caller's own RFCs."
    )
    metric = django_filters.CharFilter(
        method="filter_metric",
        label=gettext_lazy("Dashboard figure"),
        max_length=120,
        help_text="The RFCs behind a dashboard figure (e.g. succeeded, rolled_back, emergency, "
        "gate:<gate name>, approval:<step>:<role>) over since–until, in the site's zone (UTC without "
        "a site).",
    )
    since = django_filters.DateFilter(method="unfiltered", help_text="First day of a figure's period.")
    until = django_filters.DateFilter(method="unfiltered", help_text="Last day of a figure's period.")
    sort = StableOrdering(
        fields=[(field, name) for name, field in SORTS.items()],
        label=gettext_lazy("Sort"),
        help_text="A column to sort by (number, title, class, state, filed), '-' first for descending; "
        "default: the newest filed first.",
    )

    class Meta:
        model = Rfc
        fields: list[str] = []
        form = RfcFilterForm

    @property
    def form(self):
        form = super().form
        # The help texts document the API's parameters; the page's filter bar shows none, so no
        # field may point a screen reader at a help text that is not there.
        for field in form.fields.values():
            field.help_text = ""
        return form

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(
            Q(number__icontains=value)
            | Q(title__icontains=value)
            | Q(description__icontains=value)
            | Q(release__product__icontains=value)
        )

    def filter_state(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == OPEN:
            return queryset.filter(state__in=OPEN_STATES)
        return queryset.filter(state=value)

    def filter_site(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # EXISTS, not a join: an RFC stays one row whatever its sites.
        return queryset.filter(Exists(Impact.objects.filter(rfc=OuterRef("pk"), site__code=value)))

    def unfiltered(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset  # read by filter_metric

    def filter_metric(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        data = self.form.cleaned_data
        sites = list(access.visible_sites(getattr(self.request, "user", None)))
        if data.get("site"):
            sites = [s for s in sites if s.code == data["site"]]
        period = metrics.period(data.get("since"), data.get("until"), metrics.zone_for(sites))
        return queryset.filter(metrics.behind(value, [s.pk for s in sites], period))

    def filter_mine(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        if not value:
            return queryset
        user = getattr(self.request, "user", None)
        if user is None or not user.is_authenticated:
            return queryset.none()
        return queryset.filter(author=user)
