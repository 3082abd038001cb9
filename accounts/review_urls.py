from django.urls import path

from accounts import review_views as views

app_name = "access_review"
urlpatterns = [
    path("", views.review_page, name="page"),
    path("export.csv", views.review_csv, name="csv"),
]
