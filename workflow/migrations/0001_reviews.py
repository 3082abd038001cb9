# Post-implementation reviews (issue 15).

import core.clock
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('releases', '0007_no_line_breaks'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Review',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('opened_at', models.DateTimeField(default=core.clock.now)),
                ('outcome', models.CharField(help_text="The RFC's state when the review opened.", max_length=20)),
                ('last_deployment_id', models.BigIntegerField(default=0)),
                ('close_code', models.CharField(blank=True, choices=[('successful', 'Successful'), ('with_issues', 'Successful with issues'), ('rolled_back', 'Rolled back'), ('failed', 'Failed')], max_length=20)),
                ('what_happened', models.TextField(blank=True)),
                ('follow_ups', models.TextField(blank=True)),
                ('completed_at', models.DateTimeField(blank=True, null=True)),
                ('completed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('rfc', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='reviews', to='releases.rfc')),
            ],
            options={
                'ordering': ['-opened_at', '-pk'],
                'indexes': [models.Index(fields=['rfc', '-opened_at'], name='review_rfc_latest')],
            },
        ),
    ]
