"""The audit trail's FilterSet, shared by the trail page (reports.audit_views, through `trail.Filters`)
and `GET /api/v1/audit/` (reports.audit_api): DESIGN.md, one FilterSet per list.

The page and the API grew different names for the same columns; both spellings stay (the API's are
part of the public contract) and mean the same thing everywhere: `actor` = `actor_name`, `object` =
`object_id`, `site` = `site_code`. `action` is a prefix ("releases.rfc" finds every RFC event).
Every filter is an indexed column or a prefix of one (see the indexes on AuditEvent).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import django_filters
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from audit import actions
from audit.models import AuditEvent
from core.inputs import check_moment

TEXT_MAX = 200  # longer than any column filtered; a longer value is refused, not cut


def _date_filter(name: str, label, invalid) -> django_filters.DateFilter:
    return django_filters.DateFilter(
        method=f"filter_{name}",
        label=label,
        input_formats=["%Y-%m-%d", "%Y%m%d"],  # what parse_date took before: ISO 8601, both forms
        error_messages={"invalid": invalid},
        validators=[check_moment],  # 0001-01-01 or 9999-12-31 is no date anyone means
        help_text=_("A day, YYYY-MM-DD (UTC); the range includes it."),
    )


def _text(field_name: str, help_text, lookup_expr: str = "exact") -> django_filters.CharFilter:
    return django_filters.CharFilter(
        field_name=field_name, lookup_expr=lookup_expr, max_length=TEXT_MAX, help_text=help_text
    )


class AuditEventFilterSet(django_filters.FilterSet):
    start = _date_filter("start", _("Start"), _("Start must be a date (YYYY-MM-DD)."))
    end = _date_filter("end", _("End"), _("End must be a date (YYYY-MM-DD)."))
    actor = _text("actor_name", _("The actor's username (as recorded)."))
    actor_name = _text("actor_name", _("Same as actor."))
    action = django_filters.CharFilter(
        method="filter_action",
        max_length=TEXT_MAX,
        help_text=_('The action, or its start ("releases.rfc"); older spellings of an action match too.'),
    )
    object = _text("object_id", _("The object's id, e.g. an RFC number."))
    object_id = _text("object_id", _("Same as object."))
    object_type = _text("object_type", _('The object\'s type, e.g. "releases.rfc".'))
    site = _text("site_code", _("Site code."))
    site_code = _text("site_code", _("Same as site."))
    text = django_filters.CharFilter(
        method="filter_text", max_length=TEXT_MAX, help_text=_("Text in the reason or the object's name.")
    )

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def filter_action(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(actions.starting_with(value))

    # Time rises with seq (record() stamps it under the chain-head lock), so a date range becomes a
    # seq range found on the occurred_at index: the page query stays a bounded scan of the seq index.
    def filter_start(self, queryset: QuerySet, name: str, value) -> QuerySet:
        moment = datetime.combine(value, time(0), tzinfo=UTC)
        first = (
            AuditEvent.objects.filter(occurred_at__gte=moment)
            .order_by("occurred_at", "seq")
            .values_list("seq", flat=True)
            .first()
        )
        return queryset.filter(seq__gte=first, occurred_at__gte=moment) if first else queryset.none()

    def filter_end(self, queryset: QuerySet, name: str, value) -> QuerySet:
        if value >= date.max:  # the last day there is: nothing lies after it
            return queryset
        moment = datetime.combine(value + timedelta(days=1), time(0), tzinfo=UTC)
        last = (
            AuditEvent.objects.filter(occurred_at__lt=moment)
            .order_by("-occurred_at", "-seq")
            .values_list("seq", flat=True)
            .first()
        )
        return queryset.filter(seq__lte=last, occurred_at__lt=moment) if last else queryset.none()

    def filter_text(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(reason__icontains=value) | Q(object_repr__icontains=value))
