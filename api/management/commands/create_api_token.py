"""manage.py create_api_token USERNAME [--name N]: prints a new API token once."""

from __future__ import annotations

import sys
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandParser

from api.models import ApiToken


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it (it is stored hashed: shown only now)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="What the token is for.")

    def handle(self, *args: Any, **options: Any) -> None:
        name = str(options["name"]).strip()
        user = User.objects.filter(username=options["username"]).first()
        problem = ""
        if user is None or not user.is_active:
            problem = f"No active user named {options['username']!r}."
        elif not name or len(name) > 100:
            problem = "--name must be 1 to 100 characters."
        if problem or user is None:
            # One line and exit 2, like a usage error: scripts can tell it from a crash.
            self.stderr.write(f"create_api_token: {problem}")
            sys.exit(2)
        _, plain = ApiToken.issue(user, name)
        self.stdout.write(plain)
