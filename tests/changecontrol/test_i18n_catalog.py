"""Every string a person reads is in the German catalog: templates hold no
unmarked text, the committed catalog holds exactly what makemessages extracts from the source, every
entry is translated (none empty, none fuzzy), and the compiled catalog is the committed one."""

from __future__ import annotations

import subprocess

import pytest

from tests import i18n_lint
from tests.changecontrol import catalog


def test_no_template_holds_text_unmarked_for_translation():
    assert i18n_lint.report(i18n_lint.templates()) == {}


def test_the_lint_finds_unmarked_text_and_accepts_marked_text():
    assert i18n_lint.unmarked("<p>{% translate 'Deploy now' %} <b>PROD</b></p>") == []
    assert i18n_lint.unmarked("<p>{% blocktranslate %}Deploy {{ x }}{% endblocktranslate %}</p>") == []
    assert i18n_lint.unmarked("<p>Deploy now</p>") == ["Deploy now"]
    assert i18n_lint.unmarked('<a title="Open it" href="/x">{{ y }}</a>') == ['"Open it"']


@pytest.mark.gettext
def test_the_catalog_holds_what_makemessages_extracts_all_translated(tmp_path):
    committed = catalog.entries(catalog.PO.read_text(encoding="utf-8"))
    extracted = catalog.extract(tmp_path)
    assert sorted(set(extracted) - set(committed))[:20] == [], "not in the catalog: run `make messages`"
    assert sorted(set(committed) - set(extracted))[:20] == [], "no longer in the source: run `make messages`"
    untranslated = [key for key, strs in committed.items() if not all(strs) or strs == ["#fuzzy"]]
    assert untranslated[:20] == [], f"{len(untranslated)} entries untranslated or fuzzy"


@pytest.mark.gettext
def test_the_compiled_catalog_is_the_committed_one(tmp_path):
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check", "-o", str(fresh), str(catalog.PO)], check=True, capture_output=True)
    assert catalog.compiled(catalog.MO) == catalog.compiled(fresh), (
        "run `make messages` to compile the catalog"
    )
