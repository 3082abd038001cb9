from django.urls import path

from deployments import views as deployment_views
from reports import evidence_views
from workflow import views

app_name = "releases"

urlpatterns = [
    path("", views.rfc_list, name="list"),
    path("mine/", views.my_rfcs, name="mine"),
    path("new/", views.rfc_create, name="create"),
    path("new/classify/", views.classify, name="classify"),
    path("releases/new/", views.release_create, name="release_create"),
    path("<uuid:uuid>/", views.rfc_detail, name="detail"),
    path("<uuid:uuid>/edit/", views.rfc_edit, name="edit"),
    path("<uuid:uuid>/do/<slug:name>/", views.rfc_transition, name="transition"),
    path("<uuid:uuid>/evidence/", views.evidence_add, name="evidence_add"),
    path("<uuid:uuid>/evidence/<uuid:evidence_uuid>/", views.evidence_download, name="evidence_download"),
    path(
        "<uuid:uuid>/evidence/<uuid:evidence_uuid>/preview/", views.evidence_preview, name="evidence_preview"
    ),
    path("<uuid:uuid>/evidence/<uuid:evidence_uuid>/delete/", views.evidence_delete, name="evidence_delete"),
    path("<uuid:uuid>/signoff/", views.signoff, name="signoff"),
    path("<uuid:uuid>/evidence-pack.pdf", evidence_views.evidence_pack_pdf, name="evidence_pack_pdf"),
    path("<uuid:uuid>/evidence-pack.json", evidence_views.evidence_pack_json, name="evidence_pack_json"),
    path("<uuid:uuid>/schedule/", views.rfc_schedule, name="schedule"),
    path("<uuid:uuid>/deploy/", deployment_views.deploy_now, name="deploy_now"),
    path("<uuid:uuid>/checks/", views.request_check, name="request_check"),
    path(
        "<uuid:uuid>/deployments/<uuid:deployment_uuid>/",
        deployment_views.deployment_detail,
        name="deployment",
    ),
    path(
        "<uuid:uuid>/deployments/<uuid:deployment_uuid>/rollback/",
        deployment_views.deployment_rollback,
        name="deployment_rollback",
    ),
    path(
        "<uuid:uuid>/deployments/<uuid:deployment_uuid>/cancel/",
        deployment_views.deployment_cancel,
        name="deployment_cancel",
    ),
]
