# Deployment, DeploymentStep and CheckRun now belong to `deployments` (its 0001); only the state changes here.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('releases', '0004_checks'),
        ('deployments', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
            migrations.RemoveField(
                model_name='deployment',
                name='environment',
            ),
            migrations.RemoveField(
                model_name='deployment',
                name='rfc',
            ),
            migrations.RemoveField(
                model_name='deployment',
                name='rollback_requested_by',
            ),
            migrations.RemoveField(
                model_name='deployment',
                name='scheduled_by',
            ),
            migrations.RemoveField(
                model_name='deploymentstep',
                name='deployment',
            ),
            migrations.DeleteModel(
                name='CheckRun',
            ),
            migrations.DeleteModel(
                name='Deployment',
            ),
            migrations.DeleteModel(
                name='DeploymentStep',
            ),
            ],
        ),
    ]
