#!/usr/bin/env python
"""Django's command-line entry point for Stepscope."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    from django.core.management import execute_from_command_line
    from django.db import DatabaseError

    try:
        execute_from_command_line(sys.argv)
    except DatabaseError:
        # An unreachable or unmigrated database is one line, not a traceback.
        from dashboard.database_check import problem

        line = problem()
        if line is None:
            raise
        command = sys.argv[1] if len(sys.argv) > 1 else "manage.py"
        sys.stderr.write(f"{command}: {line}\n")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
