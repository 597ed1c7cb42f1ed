"""`manage.py classify_history PATH`: classify the HTTP attempts in saved histories or logs.

A stable contract for automated checks (issue 5 item 4; the accepted documents are described
in executions/saved_histories.py). PATH ("-" for stdin). No database. Prints one JSON object
`{"attempts": [...]}`; unreadable input exits 2 with one line on stderr.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from executions.saved_histories import InputError, classify_file

BAD_INPUT = 2


class Command(BaseCommand):
    help = "Classify the HTTP-task attempts in a saved execution history or execution-log export."
    requires_system_checks: list[str] = []  # works without a database or a configured site

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help='JSON file ("-" reads standard input)')

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = classify_file(str(options["path"]))
        except InputError as exc:
            raise CommandError(_one_line(str(exc)), returncode=BAD_INPUT) from None
        except Exception as exc:  # a bug must still not print a traceback (contract)
            raise CommandError(_one_line(f"could not classify: {exc!r}"), returncode=1) from None
        self.stdout.write(json.dumps(result, indent=2, default=str))


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]
