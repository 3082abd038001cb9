import json

from django.core.management.base import BaseCommand, CommandError

from approvals.integrity import verify_signatures


class Command(BaseCommand):
    help = (
        "Check every live signature against the RFC it signed; a change made outside the portal is "
        "reported, recorded in the audit trail and mailed to the sites' admins and auditors."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, **options):
        result = verify_signatures()
        if options["json"]:
            self.stdout.write(json.dumps(result))
        elif not result["mismatches"]:
            self.stdout.write(
                self.style.SUCCESS(f"Signatures intact: {result['checked']} live signatures checked")
            )
        if result["mismatches"]:
            raise CommandError(
                f"{result['mismatches']} signature(s) no longer match their RFC "
                f"({result['checked']} checked):\n" + "\n".join(result["problems"])
            )
