"""`manage.py classify_history`: the contract automated checks rely on."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from executions.classify import CATEGORIES

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "histories"
ATTEMPT_KEYS = [
    "execution_arn", "state", "attempt", "method", "url", "endpoint", "connection_arn",
    "status_code", "error", "cause", "outcome", "caught", "category", "subcategory",
    "evidence", "hint", "state_error", "variable_sources", "problems", "map_run",
]  # fmt: skip


def run(path: Path | str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("classify_history", str(path), stdout=out)
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def write(tmp_path: Path, data: Any, name: str = "input.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.json")))
def test_every_fixture_prints_attempts_in_the_contract_shape(fixture: str) -> None:
    result = run(FIXTURES / fixture)
    # `map_runs` only when the input holds a Distributed Map's parent (issue 15 item 5).
    assert list(result) == (
        ["attempts", "map_runs"] if fixture.startswith("map_run") else ["attempts"]
    )
    for row in result["attempts"]:
        assert list(row) == ATTEMPT_KEYS
        assert row["outcome"] in ("succeeded", "failed", "timed_out", "aborted")
        assert row["category"] in (*CATEGORIES, None)
        # Successes and calls an abort cut off are not failures: no category.
        assert (row["category"] is None) == (row["outcome"] in ("succeeded", "aborted"))
        assert row["status_code"] is None or isinstance(row["status_code"], int)
        assert isinstance(row["caught"], bool) and isinstance(row["attempt"], int)
        assert isinstance(row["evidence"], dict) and isinstance(row["hint"], str)


def test_a_history_document_gives_its_execution_arn_and_templated_endpoint() -> None:
    rows = run(FIXTURES / "deauthorized_cascade.json")["attempts"]
    first = rows[0]
    assert first["execution_arn"].endswith(":execution:Orders:cascade-1")
    assert first["url"] == "https://api.partner.example/v1/customers/12345"
    assert first["endpoint"] == "https://api.partner.example/v1/customers/{id}"
    assert [r["attempt"] for r in rows] == [1, 2, 3]
    assert [r["category"] for r in rows] == ["auth", "auth", "auth"]
    assert "de-authorized after a 401" in rows[1]["hint"]


def test_last_success_carries_across_documents_in_order() -> None:
    rows = run(FIXTURES / "missing_vs_last_success.json")["attempts"]
    assert [r["category"] for r in rows] == [None, "missing_header", "missing_parameter"]
    assert rows[1]["evidence"]["shape_diff"] == {"headers": ["x-tenant-id"]}


def test_filter_log_events_responses_are_split_per_execution() -> None:
    rows = run(FIXTURES / "express_logs.json")["attempts"]
    by_execution = {r["execution_arn"].rsplit(":", 1)[-1]: r for r in rows}
    assert set(by_execution) == {"quote-ok", "quote-bad"}
    assert by_execution["quote-bad"]["category"] == "server_error"
    assert by_execution["quote-bad"]["execution_arn"].startswith(
        "arn:aws:states:eu-west-1:111122223333:express:"
    )


def test_a_definition_in_the_document_names_pre_request_failures() -> None:
    (row,) = run(FIXTURES / "jsonpath_not_found.json")["attempts"]
    assert (row["state"], row["category"], row["outcome"]) == (
        "Lookup",
        "missing_parameter",
        "failed",
    )


def test_reversed_events_are_put_back_in_order(tmp_path: Path) -> None:
    document = json.loads((FIXTURES / "retries_503_then_success.json").read_text())
    document["events"].reverse()
    rows = run(write(tmp_path, document))["attempts"]
    assert [(r["attempt"], r["outcome"]) for r in rows] == [
        (1, "failed"),
        (2, "failed"),
        (3, "succeeded"),
    ]


def test_calls_still_in_flight_are_left_out(tmp_path: Path) -> None:
    document = json.loads((FIXTURES / "retries_503_then_success.json").read_text())
    document["events"] = document["events"][:7]  # stops after the second TaskStarted
    rows = run(write(tmp_path, document))["attempts"]
    assert [r["attempt"] for r in rows] == [1]


def test_an_empty_list_of_documents_gives_no_attempts(tmp_path: Path) -> None:
    assert run(write(tmp_path, [])) == {"attempts": []}


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{",
        "[1, 2]",
        '{"events": 3}',
        '"text"',
        "null",
        '{"no_events": []}',
        '[{"events": []}, 7]',
    ],
)
def test_unreadable_input_raises_a_command_error_with_exit_code_2(
    tmp_path: Path, content: str
) -> None:
    with pytest.raises(CommandError) as caught:
        run(write(tmp_path, content))
    assert caught.value.returncode == 2
    assert "\n" not in str(caught.value)


def test_a_missing_file_is_exit_code_2(tmp_path: Path) -> None:
    with pytest.raises(CommandError) as caught:
        run(tmp_path / "absent.json")
    assert caught.value.returncode == 2 and "cannot read" in str(caught.value)


def _manage(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "manage.py", "classify_history", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_from_the_command_line_bad_input_is_one_stderr_line_and_exit_2(tmp_path: Path) -> None:
    done = _manage(str(write(tmp_path, '{"events": [')))
    assert done.returncode == 2
    assert done.stdout == b""
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "not valid JSON" in lines[0]
    assert b"Traceback" not in done.stderr


def test_from_the_command_line_good_input_is_exactly_one_json_object_on_stdout() -> None:
    done = _manage("-", stdin=(FIXTURES / "socket.json").read_bytes())
    assert done.returncode == 0, done.stderr
    decoder = json.JSONDecoder()
    text = done.stdout.decode()
    result, end = decoder.raw_decode(text)
    assert text[end:].strip() == ""
    assert [r["category"] for r in result["attempts"]] == ["timeout", "network"]
