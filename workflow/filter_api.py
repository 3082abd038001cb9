"""Saved RFC list filters over the API: the caller's own and those shared with everyone; create with
the list's parameters as a query string (checked by the same FilterSet), delete one's own."""

from __future__ import annotations

from django.http import QueryDict
from django.urls import reverse
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from workflow import saved_filters
from workflow.models import SavedFilter


class SavedFilterSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    query = serializers.CharField(
        max_length=1000, help_text='The RFC list\'s parameters, e.g. "state=open&site=BER&sort=-filed".'
    )
    name = serializers.CharField(max_length=saved_filters.NAME_MAX)
    list_url = serializers.SerializerMethodField(help_text="The RFC list page with these filters.")
    api_url = serializers.SerializerMethodField(help_text="GET /api/v1/rfcs/ with these filters.")

    class Meta:
        model = SavedFilter
        fields = ["id", "name", "query", "shared", "owner", "created_at", "list_url", "api_url"]
        read_only_fields = ["id", "owner", "created_at"]

    def get_list_url(self, obj) -> str:
        return saved_filters.address(obj)

    def get_api_url(self, obj) -> str:
        return f"{reverse('rfc-list')}?{obj.query}"


class SavedFilterViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = SavedFilterSerializer
    queryset = SavedFilter.objects.none()  # the schema's type for {id}; get_queryset() answers requests

    def get_queryset(self):
        return saved_filters.visible(self.request.user)

    def create(self, request, *args, **kwargs):
        incoming = self.get_serializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        saved = saved_filters.save(
            request.user,
            data["name"],
            QueryDict(data["query"]),
            shared=data.get("shared", False),
            request=request,
        )
        return Response(self.get_serializer(saved).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        saved_filters.delete(request.user, int(kwargs["pk"]) if str(kwargs["pk"]).isdigit() else 0)
        return Response(status=status.HTTP_204_NO_CONTENT)
