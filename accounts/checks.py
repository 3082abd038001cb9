"""`manage.py check --deploy --database default` warns when the portal's own database role could
change the audit trail (accounts/dbroles.py)."""

from __future__ import annotations

from django.core import checks


@checks.register(checks.Tags.database, deploy=True)
def database_role(app_configs=None, databases=None, **kwargs):
    if not databases or "default" not in databases:
        return []
    from accounts.dbroles import role_problems

    return [checks.Warning(message, id=check_id) for check_id, message in role_problems("default")]
