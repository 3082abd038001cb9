"""The RFC list, GET /api/v1/rfcs/ and the approval queue written out for speed show what they showed
before: the same rows, the same cells, the same JSON, to the same people; and their statements join
only what they need (a count that reads every RFC, or a join the planner weighs on every request, is
what made these pages slow at 20,000 RFCs)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Prefetch
from django.template import engines
from django.test.utils import CaptureQueriesContext
from django.utils import translation
from rest_framework.renderers import JSONRenderer

from approvals import services as approvals
from approvals.models import Approval, ApprovalRound, ApprovalState, ApprovalStep, RoundPurpose
from core import clock
from core.roles import Role
from environments import access
from releases import services
from releases.models import Impact, Rfc
from releases.states import RfcState
from tests import factories
from tests.conftest import api_client_for, client_for, make_user
from workflow.serializers import RfcListSerializer, rfc_list_rows

pytestmark = pytest.mark.django_db

GERMAN = {"HTTP_ACCEPT_LANGUAGE": "de-DE,de;q=0.9"}
ENGLISH = {"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}

# The rows as the templates wrote them before they read precomputed values (one lazy translation and
# one reverse() per cell): the reference the pages must still equal, cell for cell.
LIST_ROW = """{% load i18n %}{% for rfc in rfcs %}
      <tr data-testid="rfc-row">
        <td class="nowrap"><a href="{% url 'releases:detail' rfc.uuid %}"><strong>{{ rfc.number }}</strong></a></td>
        <td>{{ rfc.title }}{% if rfc.is_high_risk %} <span class="badge bad">{% translate "high risk" %}</span>{% endif %}{% if rfc.emergency %} <span class="badge emergency">{% translate "Emergency" %}</span>{% endif %}</td>
        <td class="nowrap"><code>{{ rfc.release }}</code></td>
        <td><span class="badge class-{{ rfc.change_class }}">{{ rfc.get_change_class_display }}</span></td>
        <td>{% for i in rfc.impacts.all %}{{ i.site.code }}{% if not forloop.last %}, {% endif %}{% endfor %}</td>
        <td><span class="badge state-{{ rfc.state }}">{{ rfc.get_state_display }}</span></td>
        <td>{{ rfc.author.get_full_name|default:rfc.author.username }}</td>
        <td>{{ rfc.created_at|date:"SHORT_DATE_FORMAT" }}</td>
      </tr>
{% endfor %}"""  # noqa: E501
QUEUE_ROW = """{% load i18n %}{% for a in items %}
      <tr data-testid="queue-row"><td data-label="RFC"><a href="{% url 'releases:detail' a.rfc.uuid %}">{{ a.rfc.number }}</a></td>
        <td data-label="{% translate 'Title' %}">{{ a.rfc.title }}{% if a.rfc.is_high_risk %} <span class="badge bad">{% translate "high risk" %}</span>{% endif %}{% if a.rfc.emergency %} <span class="badge emergency">{% translate "Emergency" %}</span>{% endif %}{% if a.step.round.is_review %} <span class="badge">{% translate "Review" %}</span>{% endif %}</td>
        <td data-label="{% translate 'Class' %}"><span class="badge class-{{ a.rfc.change_class }}">{{ a.rfc.get_change_class_display }}</span></td>
        <td data-label="{% translate 'You sign as' %}">{% blocktranslate trimmed with role=a.get_role_display site=a.site.code %}{{ role }} of {{ site }}{% endblocktranslate %}</td>
        <td data-label="{% translate 'Waiting since' %}">{% blocktranslate trimmed with since=a.step.activated_at|timesince %}{{ since }} ago{% endblocktranslate %}</td>
        <td><a class="btn primary" href="{% url 'approvals:decide' a.pk %}">{% translate "Review and sign" %}</a></td></tr>
{% endfor %}"""  # noqa: E501


def _rows(html: str, testid: str) -> list[str]:
    return [" ".join(row.split()) for row in re.findall(rf'<tr data-testid="{testid}">.*?</tr>', html, re.S)]


@pytest.fixture
def world(cast, site_a, site_b):
    """RFCs of every kind a cell shows: at one site, at both, at the other site only, with no impact
    at all (nobody sees it), high risk, an emergency, scored, submitted, an author without a name,
    and a title that needs escaping."""
    dev = cast["dev"]
    release = factories.release(dev, "1.0.1")
    plain = factories.rfc(dev, site_a, release=release, title="Label timeout")
    both = factories.rfc(
        dev,
        site_b,
        release=release,
        title='<b>Scanner</b> & "driver"',
        impacts=[{"site": site_b, "lines": ["Line 1"]}, {"site": site_a, "lines": ["Line 2"]}],
    )
    elsewhere = factories.rfc(
        dev, site_b, release=release, title="Only at B", impacts=[{"site": site_b, "lines": ["Line 1"]}]
    )
    nameless = make_user("nameless", Role.DEVELOPER)
    User.objects.filter(pk=nameless.pk).update(first_name="")
    risky = factories.rfc(
        nameless,
        site_a,
        release=factories.release(dev, "2.0.0"),
        title="Risky",
        estimated_downtime_minutes=30,
        retraining_note="An hour",
    )
    orphan = factories.rfc(dev, site_a, release=release, title="No impact")
    Impact.objects.filter(rfc=orphan).delete()
    now = clock.now()
    Rfc.objects.filter(pk=risky.pk).update(
        high_risk=True,
        emergency=True,
        risk_score=87,
        risk_level="high",
        state=RfcState.SUBMITTED,
        submitted_at=now,
    )
    Rfc.objects.filter(pk=both.pk).update(state=RfcState.IN_APPROVAL, submitted_at=now - timedelta(days=2))
    return {"plain": plain, "both": both, "elsewhere": elsewhere, "risky": risky, "orphan": orphan}


def _numbers(rows) -> set[str]:
    return {row["number"] for row in rows}


def test_who_sees_which_rfcs_is_unchanged(cast, world):
    everyone = {world[key].number for key in ("plain", "both", "elsewhere", "risky")}
    assert {r.number for r in services.visible_rfcs(cast["dev"])} == everyone  # not the RFC without impact
    at_a = {world[key].number for key in ("plain", "both", "risky")}
    assert {r.number for r in services.visible_rfcs(cast["itmanager_a"])} == at_a
    assert not services.visible_rfcs(cast["nobody"]).exists()
    assert services.visible_rfcs(cast["dev"]).count() == 4
    assert services.visible_rfcs(cast["itmanager_a"]).count() == 3


def test_the_count_for_a_user_who_sees_every_site_does_not_join_the_sites(cast, world):
    """Every impact names an existing site (a foreign key), so "an impact at any site" is "an impact":
    the semi-join reads two indexes and never the sites table."""
    with CaptureQueriesContext(connection) as queries:
        assert services.visible_rfcs(cast["dev"]).count() == 4
    assert "environments_site" not in queries[-1]["sql"]
    # A user of some sites still asks for an impact at one of them, by id.
    with CaptureQueriesContext(connection) as queries:
        assert services.visible_rfcs(cast["itmanager_a"]).count() == 3
    assert "site_id" in queries[-1]["sql"] and "environments_site" not in queries[-1]["sql"]


@pytest.mark.parametrize("who", ["dev", "itmanager_a"])
def test_the_api_list_is_the_serializers_json(cast, world, who):
    response = api_client_for(cast[who]).get("/api/v1/rfcs/")
    assert response.status_code == 200
    rfcs = (
        services.visible_rfcs(cast[who])
        .select_related("release", "author")
        .prefetch_related(Prefetch("impacts", queryset=Impact.objects.select_related("site")))
        .order_by("-created_at", "-id")
    )
    expected = {"count": len(rfcs), "next": None, "previous": None}
    expected["results"] = RfcListSerializer(rfcs, many=True).data
    assert response.content == JSONRenderer().render(expected)
    body = response.json()
    assert [row["sites"] for row in body["results"] if row["number"] == world["both"].number] == [
        ["PLA", "PLB"]
    ]
    assert world["orphan"].number not in _numbers(body["results"])
    assert (world["elsewhere"].number in _numbers(body["results"])) == (who == "dev")


def test_rfc_list_rows_equals_the_serializer_for_every_rfc(world):
    """Also the RFC without impact, a time in another zone and the null fields, row for row."""
    rfcs = list(
        Rfc.objects.select_related("release", "author")
        .prefetch_related(Prefetch("impacts", queryset=Impact.objects.select_related("site")))
        .order_by("pk")
    )
    for zone in ("UTC", "America/Chicago"):
        with translation.override("de"), _zone(zone):
            assert rfc_list_rows(rfcs) == RfcListSerializer(rfcs, many=True).data


class _zone:
    def __init__(self, name):
        from django.utils import timezone

        self.override = timezone.override(name)

    def __enter__(self):
        return self.override.__enter__()

    def __exit__(self, *exc):
        return self.override.__exit__(*exc)


@pytest.mark.parametrize("language", [ENGLISH, GERMAN])
@pytest.mark.parametrize("who", ["dev", "itmanager_a"])
def test_the_list_page_shows_the_same_cells(cast, world, who, language):
    html = client_for(cast[who]).get("/rfcs/", **language).content.decode()
    rfcs = (
        services.visible_rfcs(cast[who])
        .select_related("release", "author")
        .prefetch_related(Prefetch("impacts", queryset=Impact.objects.select_related("site")))
        .order_by("-created_at", "-id")
    )
    with translation.override("de" if language is GERMAN else "en-gb"):
        expected = engines["django"].from_string(LIST_ROW).render({"rfcs": rfcs})
    assert _rows(html, "rfc-row") == _rows(expected, "rfc-row")
    assert len(_rows(html, "rfc-row")) == (4 if who == "dev" else 3)
    assert "&lt;b&gt;Scanner&lt;/b&gt; &amp; &quot;driver&quot;" in html and "<b>Scanner" not in html
    assert ">Nameless<" not in html and ">nameless<" in html or who != "dev"


def _waiting(rfc, site, roles=(Role.IT_MANAGER,), purpose=None):
    now = clock.now()
    extra = {"purpose": purpose} if purpose else {}
    rnd = ApprovalRound.objects.create(
        rfc=rfc, number=1, change_class="minor", content_hash="0" * 64, created_at=now, **extra
    )
    step = ApprovalStep.objects.create(
        round=rnd, order=1, roles=[r.value for r in roles], rule="all", state="pending", activated_at=now
    )
    return [
        Approval.objects.create(step=step, rfc=rfc, role=role, site=site, state=ApprovalState.PENDING)
        for role in roles
    ]


@pytest.mark.parametrize("language", [ENGLISH, GERMAN])
def test_the_queue_shows_the_same_cells_and_never_the_approvers_own(cast, world, site_a, site_b, language):
    manager = cast["itmanager"]
    _waiting(world["plain"], site_a)
    _waiting(world["both"], site_b, roles=(Role.IT_MANAGER, Role.OPERATIONS_MANAGER))
    _waiting(world["risky"], site_a, purpose=RoundPurpose.REVIEW)
    own = factories.rfc(cast["dev"], site_a, release=world["plain"].release, title="The manager's own")
    Rfc.objects.filter(pk=own.pk).update(author=manager)
    _waiting(own, site_a)
    html = client_for(manager).get("/approvals/", **language).content.decode()
    items = list(approvals.approvals_for(manager).order_by("pk"))
    assert own.number not in {a.rfc.number for a in items} and len(items) == 3
    with translation.override("de" if language is GERMAN else "en-gb"):
        expected = engines["django"].from_string(QUEUE_ROW).render({"items": items})
    assert _rows(html, "queue-row") == _rows(expected, "queue-row")
    assert len(_rows(html, "queue-row")) == 3


def test_the_queue_count_reads_approvals_without_joining_rfcs(cast, world, site_a):
    """The author's own RFCs are a subquery: the count of a long queue reads the approvals alone,
    and the page joins only what a row shows (each join costs the planner on every request)."""
    manager = cast["itmanager"]
    _waiting(world["plain"], site_a)
    with CaptureQueriesContext(connection) as queries:
        response = client_for(manager).get("/approvals/")
    assert response.status_code == 200
    statements = [q["sql"] for q in queries if "approvals_approval" in q["sql"]]
    count = next(sql for sql in statements if "COUNT(" in sql)
    assert "JOIN" not in count
    page = next(sql for sql in statements if "COUNT(" not in sql)
    assert "auth_user" not in page and "releases_release" not in page


def test_one_query_tells_a_users_roles(cast, site_a, site_b):
    """Global roles through a group or the user, roles at a site through the user or a group, and a
    time-bound grant until it ends: in one statement."""
    from django.contrib.auth.models import Group
    from guardian.shortcuts import assign_perm

    from environments.models import TimedRoleGrant

    person = make_user("person", Role.DEVELOPER)
    assign_perm(Role.KEY_USER.codename, person, site_a)
    group = Group.objects.create(name="B approvers")
    assign_perm(Role.OPERATIONS_MANAGER.codename, group, site_b)
    person.groups.add(group)
    now = clock.now()
    for site, role, left in (
        (site_b, Role.IT_MANAGER, timedelta(hours=1)),
        (None, Role.RELEASE_MANAGER, timedelta(hours=1)),  # at every site
        (site_a, Role.AUDITOR, -timedelta(seconds=1)),  # ended
    ):
        TimedRoleGrant.objects.create(
            user=person, site=site, role=role, expires_at=now + left, granted_at=now
        )
    fresh = User.objects.get(pk=person.pk)
    with CaptureQueriesContext(connection) as queries:
        roles = access.role_map(fresh)
    assert len(queries) == 1
    assert roles == {
        None: frozenset({Role.DEVELOPER, Role.RELEASE_MANAGER}),
        site_a.pk: frozenset({Role.KEY_USER}),
        site_b.pk: frozenset({Role.OPERATIONS_MANAGER, Role.IT_MANAGER}),
    }
    assert access.role_map(User.objects.get(pk=cast["nobody"].pk)) == {}


@pytest.mark.parametrize("language", ["en-gb", "de"])
def test_the_filter_bars_drop_downs_are_djangos_select(language):
    """Made once and kept per language and value: the same HTML as Django's Select, and a value
    outside the choices (bad input) is rendered as usual and not kept."""
    from django import forms

    from workflow.filters import FixedSelect, RfcFilterSet

    field = RfcFilterSet().form.fields["state"]
    with translation.override(language):
        for value in (None, "", "open", "draft", "bogus", "<script>"):
            attrs = {"id": "id_state"}
            expected = forms.Select(choices=field.choices).render("state", value, attrs)
            fixed = FixedSelect(choices=field.choices)
            assert fixed.render("state", value, attrs) == expected
            assert fixed.render("state", value, attrs) == expected
    assert not any("bogus" in key or "<script>" in key for key in FixedSelect._made)
