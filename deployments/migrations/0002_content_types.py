# The moved models' content types follow them, so their permissions (and any per-object grant or
# admin log entry) keep pointing at the same rows.
from django.db import migrations

MOVED = ("deployment", "deploymentstep", "checkrun")


def forwards(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label="deployments", model=model).exists():
            ContentType.objects.filter(app_label="releases", model=model).update(app_label="deployments")


def backwards(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label="releases", model=model).exists():
            ContentType.objects.filter(app_label="deployments", model=model).update(app_label="releases")


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0001_initial"),
        ("releases", "0005_deployments_moved"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
