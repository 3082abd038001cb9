"""Several products per environment (E9, R5): each environment's single `active_version` becomes a
ProductVersion row, and the column goes (the rows are the one record of what runs).

Which product the old version was: the product of the newest release deployed there with that very
version (a succeeded deployment in `releases_deployment`); failing that, the product of the newest
release deployed there at all; failing that (nothing deployed through the portal, or a database from
before the deployments table), "MES", the product the portal was first built for. The SQL reads the
tables by name, so this migration needs no dependency on the packages above environments.
A recorded fingerprint's "version" becomes "versions" {product: version} the same way, so drift
compares like with like until the next fingerprint. Backwards, the newest-updated product's
version goes back into `active_version`.
"""

import django.db.models.deletion
from django.db import migrations, models

import core.clock
import environments.models

DEFAULT_PRODUCT = "MES"

NEWEST_DEPLOYED = """
    SELECT r.product FROM releases_deployment d
    JOIN releases_rfc c ON c.id = d.rfc_id
    JOIN releases_release r ON r.id = c.release_id
    WHERE d.environment_id = %s AND d.state = 'succeeded' {extra}
    ORDER BY d.finished_at DESC, d.id DESC
"""


def _product_of(cursor, environment_id: int, version: str, tables: set[str]) -> str:
    if not {"releases_deployment", "releases_rfc", "releases_release"} <= tables:
        return DEFAULT_PRODUCT
    for extra, params in (("AND r.version = %s", [environment_id, version]), ("", [environment_id])):
        cursor.execute(NEWEST_DEPLOYED.format(extra=extra), params)
        row = cursor.fetchone()
        if row:
            return row[0]
    return DEFAULT_PRODUCT


def forwards(apps, schema_editor):
    Environment = apps.get_model("environments", "Environment")
    ProductVersion = apps.get_model("environments", "ProductVersion")
    connection = schema_editor.connection
    tables = set(connection.introspection.table_names())
    now = core.clock.now()
    rows = []
    with connection.cursor() as cursor:
        for env in Environment.objects.only("pk", "active_version", "fingerprint"):
            product = _product_of(cursor, env.pk, env.active_version, tables) if env.active_version else ""
            if product:
                rows.append(
                    ProductVersion(environment_id=env.pk, product=product, version=env.active_version, updated_at=now)
                )
            fingerprint = dict(env.fingerprint or {})
            if "version" in fingerprint:
                old = fingerprint.pop("version")
                versions = {(_product_of(cursor, env.pk, old, tables) if old else ""): old} if old else {}
                Environment.objects.filter(pk=env.pk).update(fingerprint={"versions": versions, **fingerprint})
    ProductVersion.objects.bulk_create(rows)


def backwards(apps, schema_editor):
    Environment = apps.get_model("environments", "Environment")
    ProductVersion = apps.get_model("environments", "ProductVersion")
    for env in Environment.objects.all():
        newest = ProductVersion.objects.filter(environment=env).order_by("-updated_at", "-product").first()
        if newest:
            Environment.objects.filter(pk=env.pk).update(active_version=newest.version)


class Migration(migrations.Migration):
    dependencies = [
        ("environments", "0006_promotion_and_rollback"),
    ]

    operations = [
        migrations.CreateModel(
            name="ProductVersion",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "product",
                    models.CharField(help_text="As a release names it, e.g. MES or ERP-interface.", max_length=100),
                ),
                ("version", models.CharField(max_length=64, validators=[environments.models.validate_semver])),
                (
                    "updated_at",
                    models.DateTimeField(default=core.clock.now, help_text="When this version was recorded."),
                ),
                (
                    "environment",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="products",
                        to="environments.environment",
                    ),
                ),
            ],
            options={
                "ordering": ["environment", "product"],
                "constraints": [
                    models.UniqueConstraint(fields=("environment", "product"), name="one_version_per_product")
                ],
            },
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(model_name="environment", name="active_version"),
    ]
