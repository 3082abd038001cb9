from django.urls import path

from discussion import views

# Under rfcs/ in the "releases" namespace, beside the RFC page.
rfc_patterns = [
    path("<uuid:uuid>/comments/", views.add, name="comment_add"),
    path("<uuid:uuid>/comments/<int:pk>/edit/", views.edit, name="comment_edit"),
    path("<uuid:uuid>/comments/<int:pk>/history/", views.history, name="comment_history"),
]
