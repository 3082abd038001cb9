"""Audit lanes (docs/audit-chain.md, "Writers without a global lock"): up to 64 chain-head rows, one
per lane, and on PostgreSQL a sequence for the events' global seq, taken while a lane is locked.
The existing chain is lane 1, unchanged."""

from django.db import migrations, models

SEQUENCE = """
CREATE SEQUENCE IF NOT EXISTS audit_event_seq AS bigint MINVALUE 1;
SELECT setval('audit_event_seq', COALESCE((SELECT MAX(seq) FROM audit_auditevent), 0) + 1, false);
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SEQUENCE, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP SEQUENCE IF EXISTS audit_event_seq", params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_text_search_trigram")]
    operations = [
        migrations.RemoveConstraint(model_name="chainhead", name="audit_single_head"),
        migrations.AddConstraint(
            model_name="chainhead",
            constraint=models.CheckConstraint(
                condition=models.Q(("id__gte", 1), ("id__lte", 64)), name="audit_single_head"
            ),
        ),
        migrations.RunPython(forward, backward),
    ]
