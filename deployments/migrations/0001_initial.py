# Deployments moved here from `releases`: the state moves, the tables keep their names (no data is copied).

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('environments', '0005_computed_evidence'),
        ('releases', '0004_checks'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
            migrations.CreateModel(
                name='Deployment',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('uuid', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                    ('scheduled_start', models.DateTimeField()),
                    ('scheduled_end', models.DateTimeField(help_text='Start + duration + smoke test + rollback budget: the slot it holds.')),
                    ('duration_minutes', models.PositiveIntegerField()),
                    ('state', models.CharField(choices=[('scheduled', 'Scheduled'), ('running', 'Running'), ('verifying', 'Verifying'), ('succeeded', 'Succeeded'), ('rolling_back', 'Rolling back'), ('rolled_back', 'Rolled back'), ('rollback_failed', 'Rollback failed'), ('failed', 'Failed'), ('cancelled', 'Cancelled'), ('missed', 'Missed')], default='scheduled', max_length=16)),
                    ('emergency', models.BooleanField(default=False)),
                    ('handover_override', models.BooleanField(default=False, help_text='Plant Director allowed a start in a handover.')),
                    ('created_at', models.DateTimeField(auto_now_add=True)),
                    ('cancel_reason', models.CharField(blank=True, max_length=300)),
                    ('lease_owner', models.CharField(blank=True, max_length=100)),
                    ('lease_expires_at', models.DateTimeField(blank=True, null=True)),
                    ('attempts', models.PositiveSmallIntegerField(default=0, help_text='Times a worker took the lease.')),
                    ('next_action_at', models.DateTimeField(blank=True, help_text='When a worker is next due (the smoke delay is a row, not a sleeping task).', null=True)),
                    ('dispatched_at', models.DateTimeField(blank=True, null=True)),
                    ('started_at', models.DateTimeField(blank=True, null=True)),
                    ('finished_at', models.DateTimeField(blank=True, null=True)),
                    ('window_ends_at', models.DateTimeField(blank=True, help_text='No apply step starts after this.', null=True)),
                    ('outcome', models.TextField(blank=True)),
                    ('environment', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='deployments', to='environments.environment')),
                    ('rfc', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='deployments', to='releases.rfc')),
                    ('rollback_requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('scheduled_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ],
                options={
                    'db_table': 'releases_deployment',
                    'ordering': ['scheduled_start'],
                },
            ),
            migrations.CreateModel(
                name='DeploymentStep',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('order', models.PositiveSmallIntegerField()),
                    ('name', models.CharField(max_length=40)),
                    ('phase', models.CharField(default='forward', help_text='forward or rollback', max_length=10)),
                    ('adapter', models.CharField(blank=True, max_length=40)),
                    ('state', models.CharField(choices=[('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('simulated', 'Simulated'), ('skipped', 'Skipped'), ('interrupted', 'Interrupted')], default='running', max_length=12)),
                    ('started_at', models.DateTimeField()),
                    ('finished_at', models.DateTimeField(blank=True, null=True)),
                    ('output', models.TextField(blank=True)),
                    ('result', models.JSONField(blank=True, default=dict)),
                    ('worker', models.CharField(blank=True, max_length=100)),
                    ('deployment', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='steps', to='deployments.deployment')),
                ],
                options={
                    'db_table': 'releases_deploymentstep',
                    'ordering': ['deployment', 'order'],
                },
            ),
            migrations.CreateModel(
                name='CheckRun',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('kind', models.CharField(choices=[('idempotency', 'SQL idempotent'), ('rehearsal', 'Rollback rehearsed')], max_length=12)),
                    ('artifact_sha256', models.CharField(max_length=64)),
                    ('state', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('passed', 'Passed'), ('failed', 'Failed')], default='queued', max_length=8)),
                    ('created_at', models.DateTimeField(auto_now_add=True)),
                    ('started_at', models.DateTimeField(blank=True, null=True)),
                    ('finished_at', models.DateTimeField(blank=True, null=True)),
                    ('result', models.JSONField(blank=True, default=dict)),
                    ('summary', models.TextField(blank=True)),
                    ('environment', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='checks', to='environments.environment')),
                    ('release', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='checks', to='releases.release')),
                    ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('rfc', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='checks', to='releases.rfc')),
                ],
                options={
                    'db_table': 'releases_checkrun',
                    'ordering': ['-created_at'],
                    'indexes': [models.Index(fields=['release', 'kind', 'state'], name='check_release_kind_idx')],
                },
            ),
            migrations.AddIndex(
                model_name='deployment',
                index=models.Index(fields=['environment', 'scheduled_start'], name='deployment_env_start_idx'),
            ),
            migrations.AddIndex(
                model_name='deployment',
                index=models.Index(fields=['state', 'scheduled_start'], name='deployment_state_start_idx'),
            ),
            migrations.AddIndex(
                model_name='deployment',
                index=models.Index(fields=['state', 'next_action_at'], name='deployment_state_next_idx'),
            ),
            migrations.AddConstraint(
                model_name='deployment',
                constraint=models.CheckConstraint(condition=models.Q(('scheduled_end__gt', models.F('scheduled_start'))), name='deployment_ends_after_start'),
            ),
            migrations.AddConstraint(
                model_name='deploymentstep',
                constraint=models.UniqueConstraint(fields=('deployment', 'phase', 'name'), name='one_step_per_name'),
            ),
            ],
        ),
    ]
