"""The plant calendar is edited by admins and audited with before, after and a reason."""

from __future__ import annotations

from datetime import time

import pytest

from audit.models import AuditEvent
from environments.models import DeploymentWindow, Freeze
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def _inline(prefix: str, rows: list[dict], extra: dict | None = None) -> dict:
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows) + (1 if extra else 0)),
        f"{prefix}-INITIAL_FORMS": str(len(rows)),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for n, row in enumerate(rows + ([extra] if extra else [])):
        data.update({f"{prefix}-{n}-{key}": value for key, value in row.items()})
    return data


def test_admin_adds_a_window_and_the_audit_shows_before_and_after(cast, site_a):
    windows = [
        {
            "id": w.pk,
            "site": site_a.pk,
            "weekday": w.weekday,
            "starts": f"{w.starts:%H:%M}",
            "ends": f"{w.ends:%H:%M}",
        }
        for w in site_a.windows.all()
    ]
    handovers = [
        {"id": h.pk, "site": site_a.pk, "at": f"{h.at:%H:%M}", "buffer_minutes": h.buffer_minutes}
        for h in site_a.handovers.all()
    ]
    data = {
        "code": site_a.code,
        "name": site_a.name,
        "timezone": site_a.timezone,
        "country": "DE",
        "subdivision": "BE",
        "block_fridays": "on",
        "quarter_close_days": "10",
        "rollout_ring": "2",
        "audit_reason": "Monday morning window for the ERP interface",
        **_inline(
            "windows", windows, {"site": site_a.pk, "weekday": "0", "starts": "09:00", "ends": "10:00"}
        ),
        **_inline("handovers", handovers),
    }
    response = client_for(cast["admin"]).post(f"/admin/environments/site/{site_a.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert DeploymentWindow.objects.filter(site=site_a, weekday=0, starts=time(9)).exists()
    event = AuditEvent.objects.get(action="environments.site.updated")
    assert (
        "Monday 09:00–10:00" not in event.before["windows"] and "Monday 09:00–10:00" in event.after["windows"]
    )
    assert event.reason == "Monday morning window for the ERP interface"


def test_admin_adds_a_freeze_with_a_reason(cast):
    response = client_for(cast["admin"]).post(
        "/admin/environments/freeze/add/",
        {
            "name": "Peak season",
            "reason": "Christmas orders",
            "starts_at_0": "2026-12-01",
            "starts_at_1": "00:00:00",
            "ends_at_0": "2026-12-24",
            "ends_at_1": "00:00:00",
            "audit_reason": "Sales asked for a freeze",
        },
    )
    assert response.status_code == 302
    freeze = Freeze.objects.get()
    assert freeze.site is None and freeze.name == "Peak season"
    event = AuditEvent.objects.get(action="environments.freeze.created")
    assert event.after["name"] == "Peak season" and event.reason == "Sales asked for a freeze"


def test_a_freeze_must_end_after_it_starts(cast):
    response = client_for(cast["admin"]).post(
        "/admin/environments/freeze/add/",
        {
            "name": "Backwards",
            "starts_at_0": "2026-12-24",
            "starts_at_1": "00:00:00",
            "ends_at_0": "2026-12-01",
            "ends_at_1": "00:00:00",
            "audit_reason": "test",
        },
    )
    assert response.status_code == 200 and "A freeze ends after it starts" in response.content.decode()
    assert not Freeze.objects.exists()


def test_calendar_admin_is_for_admins_only(cast):
    assert client_for(cast["releasemgr"]).get("/admin/environments/freeze/").status_code == 302


def test_every_admin_add_and_change_page_opens(cast, site_a):
    """Each registered model's add page, and a change page where a row exists, renders (no 500)."""
    from django.test import RequestFactory

    from environments.admin_site import portal_admin

    client = client_for(cast["admin"])
    request = RequestFactory().get("/admin/")
    request.user = cast["admin"]
    for model, model_admin in portal_admin._registry.items():
        meta = model._meta
        base = f"/admin/{meta.app_label}/{meta.model_name}/"
        expected = 200 if model_admin.has_add_permission(request) else 403  # the audit trail is append-only
        assert client.get(base + "add/").status_code == expected, base
        row = model.objects.first()
        if row is not None:
            assert client.get(f"{base}{row.pk}/change/").status_code == 200, base
