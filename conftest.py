"""Repository-root pytest configuration: fixtures shared by every test directory."""

pytest_plugins = ["tests.aws_sandbox"]
