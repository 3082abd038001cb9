"""The deployments list's FilterSet (the API's)."""

from __future__ import annotations

import uuid

import django_filters
from django.db.models import QuerySet

from core.filters import SITE_CODE_MAX, TEXT_MAX
from deployments.models import Deployment
from releases.models import RFC_NUMBER


class DeploymentFilterSet(django_filters.FilterSet):
    """`GET /api/v1/deployments/`. The parameters keep the meaning they had before the FilterSet: an
    `rfc` that is neither a number nor a UUID matches nothing, an unknown `state` matches nothing and
    an `environment` that is not a number is ignored."""

    rfc = django_filters.CharFilter(method="filter_rfc", max_length=TEXT_MAX, help_text="RFC number or UUID.")
    state = django_filters.CharFilter(field_name="state", max_length=TEXT_MAX)
    environment = django_filters.CharFilter(
        method="filter_environment", max_length=TEXT_MAX, help_text="Environment id."
    )
    site = django_filters.CharFilter(
        field_name="environment__site__code", max_length=SITE_CODE_MAX, help_text="Site code."
    )

    class Meta:
        model = Deployment
        fields: list[str] = []

    def filter_rfc(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if RFC_NUMBER.match(value):
            return queryset.filter(rfc__number=value)
        try:
            return queryset.filter(rfc__uuid=uuid.UUID(value))
        except ValueError:
            return queryset.none()

    def filter_environment(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if not (value.isascii() and value.isdigit()):
            return queryset
        # A number beyond any id names no environment (and would overflow the column).
        return queryset.filter(environment_id=int(value)) if len(value) < 18 else queryset.none()
