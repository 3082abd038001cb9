from django.urls import path

from reports import audit_views as views
from reports import periodic_views, traceability_views

app_name = "audit"
urlpatterns = [
    path("", views.event_list, name="list"),
    path("export.csv", views.export, {"fmt": "csv"}, name="export_csv"),
    path("export.jsonl", views.export, {"fmt": "jsonl"}, name="export_jsonl"),
    path("verify/", views.verify_now, name="verify"),
    path("traceability/", traceability_views.traceability_page, name="traceability"),
    path("periodic-reviews/", periodic_views.review_list, name="periodic_reviews"),
    path("periodic-reviews/<int:pk>/", periodic_views.review_detail, name="periodic_review"),
    path("periodic-reviews/<int:pk>/sign/", periodic_views.review_sign, name="periodic_review_sign"),
    path("periodic-reviews/<int:pk>/review.pdf", periodic_views.review_pdf, name="periodic_review_pdf"),
]
