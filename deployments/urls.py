from django.urls import path

from deployments import flag_views, views

# Under an RFC's address, composed into the RFC pages' namespace.
rfc_patterns = [
    path("<uuid:uuid>/deploy/", views.deploy_now, name="deploy_now"),
    path("<uuid:uuid>/deployments/<uuid:deployment_uuid>/", views.deployment_detail, name="deployment"),
    path(
        "<uuid:uuid>/deployments/<uuid:deployment_uuid>/rollback/",
        views.deployment_rollback,
        name="deployment_rollback",
    ),
    path(
        "<uuid:uuid>/deployments/<uuid:deployment_uuid>/cancel/",
        views.deployment_cancel,
        name="deployment_cancel",
    ),
]

# Under an environment's address, composed into the environments namespace.
flag_patterns = [
    path("<str:code>/<str:tier>/flags/", flag_views.flags_page, name="flags"),
    path("<str:code>/<str:tier>/flags/switch/", flag_views.flag_switch, name="flag_switch"),
]
