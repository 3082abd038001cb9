from django.urls import path

from workflow import filter_views, rollout_views, views

# The RFC pages; changecontrol/urls.py adds the deployment and evidence-pack paths under the same
# namespace ("releases").
urlpatterns = [
    path("", views.rfc_list, name="list"),
    path("mine/", views.my_rfcs, name="mine"),
    path("filters/", filter_views.save_filter, name="save_filter"),
    path("filters/<int:pk>/delete/", filter_views.delete_filter, name="delete_filter"),
    path("new/", views.rfc_create, name="create"),
    path("new/classify/", views.classify, name="classify"),
    path("releases/new/", views.release_create, name="release_create"),
    path("releases/<uuid:uuid>/rollout/", rollout_views.rollout_page, name="rollout"),
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
    path("<uuid:uuid>/review/", views.review_complete, name="review"),
    path("<uuid:uuid>/schedule/", views.rfc_schedule, name="schedule"),
    path("<uuid:uuid>/checks/", views.request_check, name="request_check"),
    path("<uuid:uuid>/waivers/", views.waive_gate, name="waive"),
    path("<uuid:uuid>/staging-risk/", views.accept_staging_gaps, name="accept_staging_gaps"),
    path("<uuid:uuid>/waivers/<int:waiver_id>/revoke/", views.revoke_waiver, name="revoke_waiver"),
]
