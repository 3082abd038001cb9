from django.urls import path

from reports import audit_views as views
from reports import traceability_views

app_name = "audit"
urlpatterns = [
    path("", views.event_list, name="list"),
    path("export.csv", views.export, {"fmt": "csv"}, name="export_csv"),
    path("export.jsonl", views.export, {"fmt": "jsonl"}, name="export_jsonl"),
    path("verify/", views.verify_now, name="verify"),
    path("traceability/", traceability_views.traceability_page, name="traceability"),
]
