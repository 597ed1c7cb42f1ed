"""connections/arn.py, the one reader and writer of ARNs: round trips, and hostile text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connections import arn

# What AWS allows in the names (state machines, executions, Map labels, connections, log groups).
NAME = st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True)
REGION = st.sampled_from(["us-east-1", "eu-west-1", "us-gov-west-1", "cn-north-1"])
ACCOUNT = st.from_regex(r"[0-9]{12}", fullmatch=True)
PARTITION = st.sampled_from(["aws", "aws-cn", "aws-us-gov"])
QUICK = settings(max_examples=150, deadline=None)


@QUICK
@given(REGION, ACCOUNT, NAME, NAME, NAME, PARTITION)
def test_step_functions_arns_round_trip(
    region: str, account: str, machine: str, name: str, run_id: str, partition: str
) -> None:
    standard = arn.execution_arn(region, account, machine, name, partition)
    express = arn.express_execution_arn(region, account, machine, name, run_id, partition)
    map_run = arn.map_run_arn(region, account, machine, name, run_id, partition)
    for text in (arn.state_machine_arn(region, account, machine, partition), standard, express):
        parsed = arn.parse(text)
        assert parsed is not None and str(parsed) == text
        assert (parsed.partition, parsed.region, parsed.account) == (partition, region, account)
        assert arn.state_machine_name(text) == machine
    assert arn.execution_name(standard) == arn.execution_name(express) == name
    assert (arn.state_machine_name(map_run), arn.map_run_label(map_run)) == (machine, name)
    assert arn.execution_name(map_run) == ""
    assert arn.machines_like(express) == arn.state_machine_arn(region, account, "*", partition)


@QUICK
@given(REGION, ACCOUNT, NAME, st.uuids(), PARTITION)
def test_connection_arns_round_trip(
    region: str, account: str, name: str, connection_id: object, partition: str
) -> None:
    text = arn.connection_arn(region, account, name, str(connection_id), partition)
    assert arn.connection_name(text) == name
    assert arn.is_connection_arn(text)
    assert (arn.region_of(text), arn.account_of(text)) == (region, account)
    assert arn.region_in_text(f"User is not authorized on resource {text} (403)") == region
    assert (
        arn.state_machine_name(text) == arn.execution_name(text) == arn.log_group_name(text) == ""
    )


def test_the_other_kinds_read_as_aws_writes_them() -> None:
    assert arn.log_group_name("arn:aws:logs:eu-west-1:111122223333:log-group:/aws/sfn/x:*") == (
        "/aws/sfn/x"
    )
    assert arn.log_group_name("arn:aws:logs:eu-west-1:111122223333:log-group:plain") == "plain"
    assert arn.role_account("arn:aws:iam::111122223333:role/path/Reader") == "111122223333"
    assert arn.role_account("arn:aws-us-gov:iam::111122223333:role/R") == "111122223333"
    machine = "arn:aws:states:eu-west-1:111122223333:stateMachine:Orders"
    assert arn.state_machine_name(machine + ":prod") == "Orders"  # an alias or a version
    child = "arn:aws:states:eu-west-1:111122223333:execution:Orders/Fanout:6a1f"
    assert arn.state_machine_name(child) == "Orders"
    assert arn.machines_like("not an arn") == "arn:aws:states:*:*:stateMachine:*"


HOSTILE = [
    "",
    "arn",
    "arn:aws",
    "arn:aws:events:eu-west-1:111122223333",
    "ARN:aws:events:eu-west-1:111122223333:connection/crm/6a1f",
    "arn:aws:events:eu-west-1:111122223333:connection/crm/6a1f\n",
    "arn:aws:events:eu-west-1:111122223333:connection/crm/6a\x00",
    "arn:aws:events:eu-west-1:111122223333:connection/crm 6a1f",
    " arn:aws:events:eu-west-1:111122223333:connection/crm/6a1f",
    "arn:aws:events:eu-west-1:١١١١٢٢٢٢٣٣٣٣:connection/crm/6a1f",  # Arabic-Indic digits
    "arn:aws:events:EU-WEST-1:111122223333:connection/crm/6a1f",
    "arn:evil:events:eu-west-1:111122223333:connection/crm/6a1f",
    "arn:aws:events:eu-west-1:111122223333:connection/" + "a/" * 2000,
    "arn:aws:states:eu-west-1:111122223333:execution:",
    "arn:aws:states:eu-west-1:111122223333:execution:Orders:",
    "arn:aws:states:eu-west-1:111122223333:express:Orders:run",
    "arn:aws:states:eu-west-1:111122223333:execution:Orders:run:extra:parts",
    "arn:aws:logs:eu-west-1:111122223333:log-group::*",
    "arn:aws:iam::12:role/x",
    "arn:aws:iam:eu-west-1:111122223333:role/x",
    "arn:aws:iam::111122223333:user/x",
    "arn:aws:iam::111122223333:role/<script>",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_reads_as_no_arn_of_the_kind(text: str) -> None:
    readers = (
        arn.connection_name,
        arn.execution_name,
        arn.log_group_name,
        arn.role_account,
        arn.map_run_label,
    )
    assert all(read(text) == "" for read in readers)
    assert not arn.is_connection_arn(text)


@pytest.mark.parametrize(
    "junk", [None, 42, b"arn:aws:iam::111122223333:role/R", ["arn"], "x" * 100_000]
)
def test_whatever_the_value_no_reader_raises(junk: object) -> None:
    assert arn.parse(junk) is None
    assert arn.region_of(junk) == arn.account_of(junk) == arn.state_machine_name(junk) == ""


@QUICK
@given(st.text(max_size=300))
def test_no_text_makes_a_reader_raise_and_a_parse_prints_back_as_given(text: str) -> None:
    parsed = arn.parse(text)
    assert parsed is None or str(parsed) == text
    arn.region_in_text(text)
    arn.machines_like(text)
    for read in (arn.connection_name, arn.execution_name, arn.log_group_name, arn.role_account):
        assert isinstance(read(text), str)
