"""Configuration items (issue 16 item 4): each site's lines, modules, interfaces and products as
records, kept by its admins (admin site, API, CSV import); an RFC's impact picks from them where a
site keeps them. The CSV import refuses bad rows by line number and imports nothing then."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from environments import items
from environments.models import ConfigurationItem
from tests import factories
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

GOOD = """site,kind,name,description
PLA,line,Line 1,Filling
PLA,line,Line 2,Labelling
PLA,module,Labelling,Label layouts
PLA,interface,ERP orders,Orders from SAP
PLB,Production line,Packaging 3,
"""


def test_a_csv_import_creates_items_and_a_second_run_changes_nothing(people):
    assert items.import_csv(people["admin"], GOOD) == {"created": 5, "updated": 0, "unchanged": 0}
    assert items.import_csv(people["admin"], GOOD) == {"created": 0, "updated": 0, "unchanged": 5}
    assert ConfigurationItem.objects.get(site__code="PLB", name="Packaging 3").kind == "line"
    event = AuditEvent.objects.filter(action="environments.items.imported").order_by("seq").first()
    assert event.after == {"created": 5, "updated": 0, "rows": 5, "sites": ["PLA", "PLB"]}
    changed = GOOD.replace("Label layouts", "Label layouts and printers")
    assert items.import_csv(people["admin"], changed)["updated"] == 1


def test_bad_rows_are_refused_by_line_number_and_nothing_is_imported(people):
    bad = (
        "site,kind,name,description\n"
        "PLA,line,Line 1,fine\n"
        "XYZ,line,Line 9,\n"
        "PLA,robot,Arm 1,\n"
        "PLA,line,,\n"
        "PLA,line,line 1,again\n"
        'PLA,module,Labelling,"two\nlines"\n'
        "PLA,line,Line 7,x,extra\n"
    )
    with pytest.raises(ValidationError) as refused:
        items.import_csv(people["admin"], bad)
    messages = refused.value.message_dict["file"]
    assert messages[0] == "Line 3: unknown site 'XYZ'."
    assert messages[1].startswith("Line 4: kind 'robot' is not one of")
    assert messages[2] == "Line 5: no name."
    assert messages[3] == "Line 6: the same item as line 2."
    assert "control characters" in messages[4]
    assert "more cells than the header" in messages[5]
    assert not ConfigurationItem.objects.exists()
    assert not AuditEvent.objects.filter(action="environments.items.imported").exists()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("name,site\nx,PLA\n", "the header lacks kind"),
        ("site,kind,name\n", "names no item"),
        ("site,kind,name\nPLA,line,Li\x00ne\n", "NUL bytes"),
    ],
)
def test_a_file_that_is_not_an_item_list_is_refused(people, text, why):
    with pytest.raises(ValidationError, match=why):
        items.import_csv(people["admin"], text)


def test_only_an_admin_of_the_site_keeps_its_items(people, site_a, site_b):
    with pytest.raises(ValidationError, match="you are not an admin of PLB"):
        items.import_csv(people["admin_a"], "site,kind,name\nPLB,line,Line 1\n")
    with pytest.raises(PermissionDenied):
        items.create(people["dev"], site_a, "line", "Line 1")
    items.create(people["admin_a"], site_a, "line", "Line 1")
    with pytest.raises(ValidationError, match="already"):
        items.create(people["admin_a"], site_a, "line", "LINE 1")


def test_the_management_command_imports_all_or_nothing(people, tmp_path):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(GOOD)
    bad.write_text("site,kind,name\nPLA,line,Line 1\nNOPE,line,Line 2\n")
    with pytest.raises(CommandError, match="Line 3: unknown site 'NOPE'"):
        call_command("import_items", str(bad), "--as", "admin")
    assert not ConfigurationItem.objects.exists()
    call_command("import_items", str(good), "--as", "admin")
    assert ConfigurationItem.objects.count() == 5


def test_the_api_lists_adds_and_imports(people, site_a):
    admin = api_client_for(people["admin"])
    made = admin.post(
        "/api/v1/configuration-items/", {"site": "PLA", "kind": "line", "name": "Line 1"}, format="json"
    )
    assert made.status_code == 201, made.json()
    refused = admin.post(
        "/api/v1/configuration-items/import/", {"csv": "site,kind,name\nPLA,line,\n"}, format="json"
    )
    assert refused.status_code == 400 and "Line 2: no name." in str(refused.json())
    imported = admin.post("/api/v1/configuration-items/import/", {"csv": GOOD}, format="json")
    assert imported.json() == {"created": 4, "updated": 1, "unchanged": 0}
    listed = (
        api_client_for(people["dev"])
        .get("/api/v1/configuration-items/", {"site": "PLA", "kind": "line"})
        .json()
    )
    assert [i["name"] for i in listed["results"]] == ["Line 1", "Line 2"]
    dev = api_client_for(people["dev"])
    assert (
        dev.post(
            "/api/v1/configuration-items/", {"site": "PLA", "kind": "line", "name": "X"}, format="json"
        ).status_code
        == 403
    )


def test_an_impact_picks_from_the_sites_items(people, site_a, site_b):
    items.import_csv(people["admin"], GOOD)
    with pytest.raises(ValidationError) as refused:
        factories.rfc(
            people["dev"], site_a, impacts=[{"site": site_a, "lines": ["Line 9"], "modules": ["Labelling"]}]
        )
    assert "Line 9: not a production line of PLA. Its production lines: Line 1, Line 2." in str(refused.value)
    rfc = factories.rfc(
        people["dev"],
        site_a,
        version="1.0.2",
        impacts=[
            {"site": site_a, "lines": ["line 2"], "modules": ["labelling"], "interfaces": ["erp orders"]}
        ],
    )
    impact = rfc.impacts.get()
    assert (impact.lines, impact.modules, impact.interfaces) == (["Line 2"], ["Labelling"], ["ERP orders"])
    # A site that keeps no interfaces takes free names; so does a site with no items at all.
    plain = factories.rfc(
        people["dev"],
        site_a,
        version="1.0.3",
        impacts=[{"site": site_a, "lines": ["Line 1"], "modules": ["Labelling"]}],
    )
    assert plain.impacts.get().interfaces == []
    # A site that keeps no items of a kind (PLB keeps lines only) takes free names for it.
    free = factories.rfc(
        people["dev"],
        site_b,
        version="1.0.4",
        impacts=[{"site": site_b, "lines": ["Packaging 3"], "modules": ["Anything"]}],
    )
    assert free.impacts.get().modules == ["Anything"]
