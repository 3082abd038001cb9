from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from accounts import oidc
from accounts import urls as accounts_urls
from accounts.api import ApiTokenViewSet, obtain_token
from accounts.login_view import LoginView
from changecontrol import views
from deployments import urls as deployments_urls
from deployments.api import DeploymentViewSet
from discussion import urls as discussion_urls
from environments import windows_api
from environments.admin_site import portal_admin
from plant import terminal_api
from plant import urls as plant_urls
from plant.api import ConfigurationItemViewSet, EnvironmentViewSet, SiteViewSet
from releases.api import ReleaseViewSet, RiskQuestionViewSet
from reports import urls as reports_urls
from reports.audit_api import AuditEventViewSet
from reports.dashboard_views import dashboard_page
from workflow import approval_views as approval_views
from workflow import urls as workflow_urls
from workflow.api import RfcViewSet
from workflow.approval_api import ApprovalViewSet
from workflow.filter_api import SavedFilterViewSet

router = DefaultRouter()
router.register("sites", SiteViewSet, basename="site")
router.register("environments", EnvironmentViewSet, basename="environment")
router.register("configuration-items", ConfigurationItemViewSet, basename="configuration-item")
router.register("audit", AuditEventViewSet, basename="audit")
router.register("approvals", ApprovalViewSet, basename="approval")
router.register("releases", ReleaseViewSet, basename="release")
router.register("rfcs", RfcViewSet, basename="rfc")
router.register("rfc-filters", SavedFilterViewSet, basename="rfc-filter")
router.register("risk-questions", RiskQuestionViewSet, basename="risk-question")
router.register("deployments", DeploymentViewSet, basename="deployment")
router.register("auth/tokens", ApiTokenViewSet, basename="apitoken")

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("dashboard/", dashboard_page, name="dashboard"),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/oidc/start/", oidc.StartView.as_view(), name="oidc-start"),
    path("accounts/oidc/callback/", oidc.CallbackView.as_view(), name="oidc-callback"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("accounts/review/", include("accounts.review_urls")),
    path("accounts/", include((accounts_urls.urlpatterns, "accounts"))),
    path(
        "environments/",
        include(
            (
                reports_urls.calendar_patterns + plant_urls.urlpatterns + deployments_urls.flag_patterns,
                "environments",
            )
        ),
    ),
    path("audit/", include("reports.audit_urls")),
    path(
        "rfcs/",
        include(
            (
                workflow_urls.urlpatterns
                + deployments_urls.rfc_patterns
                + reports_urls.rfc_patterns
                + discussion_urls.rfc_patterns,
                "releases",
            )
        ),
    ),
    path("approvals/", include("workflow.approval_urls")),
    path("notifications/", include("notify.urls")),
    path("webhooks/", include("hooks.urls")),
    path("dev/mailbox/", approval_views.mailbox, name="dev-mailbox"),
    path("admin/", portal_admin.urls),
    path("api/v1/auth/token/", obtain_token, name="api-token"),
    path("api/v1/windows/check/", windows_api.check, name="windows-check"),
    path("api/v1/windows/next/", windows_api.next_slots, name="windows-next"),
    path("api/v1/terminals/report/", terminal_api.report, name="terminal-report"),
    path("api/v1/terminals/badge.json", terminal_api.badge_json, name="terminal-badge-json"),
    path("api/v1/terminals/badge.svg", terminal_api.badge_svg, name="terminal-badge-svg"),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

handler400 = "changecontrol.views.error_400"
handler403 = "changecontrol.views.error_403"
handler404 = "changecontrol.views.error_404"
handler500 = "changecontrol.views.error_500"
