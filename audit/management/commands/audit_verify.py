import json

from django.core.management.base import BaseCommand, CommandError

from audit.services import verify


class Command(BaseCommand):
    help = "Recompute the audit trail's hash chain and report the first broken link."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, json_output=False, **options):
        result = verify()
        if options["json"]:
            self.stdout.write(json.dumps({**result.as_dict(), "problem": result.problem}))
        elif result.ok:
            self.stdout.write(
                self.style.SUCCESS(f"Audit chain intact: {result.count} events, head {result.head}")
            )
        if not result.ok:
            raise CommandError(
                f"Audit chain broken at event #{result.first_bad}: {result.problem} "
                f"({result.count} events read)"
            )
