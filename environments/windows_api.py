"""`windows/check/` and `windows/next/` (DESIGN.md contract): the calendar over the API.

Times carry their offset; a naive time is refused (400). An environment the caller may not see is a 404.
"""

from __future__ import annotations

from datetime import datetime

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from core.inputs import check_moment
from environments import access, calendar
from environments.models import Environment
from environments.windows import rules_for


def _aware(value: str, name: str):
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            _("%(name)s: not an ISO 8601 time, e.g. 2026-12-01T09:00:00+01:00.") % {"name": name}
        ) from None
    if parsed.tzinfo is None:
        raise ValidationError(
            _(
                "Give %(name)s with its offset, e.g. 2026-12-01T09:00:00+01:00: a time without one is ambiguous."
            )
            % {"name": name}
        )
    return check_moment(parsed)


class _Query(serializers.Serializer):
    environment = serializers.IntegerField(min_value=1)
    duration = serializers.IntegerField(
        min_value=0, max_value=12 * 60, help_text="Minutes the deployment takes."
    )
    emergency = serializers.BooleanField(default=False)


class CheckQuery(_Query):
    start = serializers.CharField(max_length=40)

    def validate_start(self, value):
        return _aware(value, "start")


class NextQuery(_Query):
    after = serializers.CharField(max_length=40)
    count = serializers.IntegerField(min_value=1, max_value=50, default=5)

    def validate_after(self, value):
        return _aware(value, "after")


def _environment(request, pk: int) -> Environment:
    return access.get_visible_or_404(
        Environment.objects.select_related("site"), request.user, pk=pk, site_field="site"
    )


CHECK_PARAMS = [
    OpenApiParameter("environment", int, required=True),
    OpenApiParameter("start", str, required=True, description="ISO 8601 with offset."),
    OpenApiParameter(
        "duration", int, required=True, description="Minutes; smoke test and rollback budget are added."
    ),
    OpenApiParameter("emergency", bool, description="Evaluate as an emergency change."),
]


@extend_schema(
    summary="May a deployment start then? Every reason that blocks it.",
    parameters=CHECK_PARAMS,
    responses=inline_serializer(
        "WindowCheck",
        {
            "allowed": serializers.BooleanField(),
            "reasons": serializers.ListField(child=serializers.CharField()),
            "end": serializers.DateTimeField(),
            "timezone": serializers.CharField(),
        },
    ),
)
@api_view(["GET"])
def check(request):
    query = CheckQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    data = query.validated_data
    environment = _environment(request, data["environment"])
    decision = calendar.check(
        rules_for(environment), data["start"], data["duration"], emergency=data["emergency"]
    )
    return Response(
        {**decision.as_dict(), "end": decision.end.isoformat(), "timezone": environment.site.timezone}
    )


@extend_schema(
    summary="The next allowed starts",
    parameters=[
        *[p for p in CHECK_PARAMS if p.name != "start"],
        OpenApiParameter("after", str, required=True, description="ISO 8601 with offset."),
        OpenApiParameter("count", int, description="1–50, default 5."),
    ],
    responses=inline_serializer(
        "WindowSlots",
        {
            "slots": serializers.ListField(
                child=inline_serializer(
                    "WindowSlot", {"start": serializers.DateTimeField(), "end": serializers.DateTimeField()}
                )
            )
        },
    ),
)
@api_view(["GET"])
def next_slots(request):
    query = NextQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    data = query.validated_data
    environment = _environment(request, data["environment"])
    slots = calendar.next_slots(
        rules_for(environment),
        data["after"],
        data["duration"],
        count=data["count"],
        emergency=data["emergency"],
    )
    return Response({"slots": [{"start": s.start.isoformat(), "end": s.end.isoformat()} for s in slots]})
