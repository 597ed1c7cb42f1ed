"""De-authorization episodes and their cascade, computed without the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

from connections import health
from connections.deauthorization import INVALID_STATE
from connections.health import Deauthorization, MachineHit, Segment, Trigger

T = datetime(2025, 3, 10, 14, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)
REASON = "The connection was deauthorized because the endpoint returned HTTP 401 Unauthorized."
ARN = "arn:aws:events:eu-west-1:111122223333:connection/crm/0f1e"


@dataclass(frozen=True)
class Change:
    state: str
    changed_at: datetime
    reason: str = ""


@dataclass(frozen=True)
class Conn:
    pk: int
    name: str
    state: str = "AUTHORIZED"


@dataclass(frozen=True)
class Group:
    error: str
    last_seen_at: datetime
    connection: Conn | None


def hit(segment: int, machine: int = 1, *, failures: int = 3, at: datetime = T) -> MachineHit:
    return MachineHit(
        segment=segment,
        state_machine_id=machine,
        state_machine=f"Machine{machine}",
        region="eu-west-1",
        account_id=1,
        account=f"account-{machine % 2}",
        failures=failures,
        executions=failures,
        first_at=at,
        last_at=at + timedelta(minutes=10),
    )


def trigger(at: datetime = T, endpoint: str = "https://crm.example/v1/customers/{id}") -> Trigger:
    return Trigger(
        attempt_id=7,
        at=at,
        status_code=401,
        error="States.Http.StatusCode.401",
        method="GET",
        endpoint_id=3,
        endpoint=endpoint,
        state_machine_id=1,
        state_machine="SyncCrm",
        execution_id=9,
        execution="run-1",
        account="payments",
    )


# --- deauthorizations -------------------------------------------------------------------------


def test_a_deauthorization_runs_until_the_connection_is_authorized_again() -> None:
    changes = [
        Change("AUTHORIZED", T - 2 * HOUR),
        Change("DEAUTHORIZED", T, REASON),
        Change("AUTHORIZING", T + HOUR),  # still failing while it lasts
        Change("AUTHORIZED", T + 2 * HOUR),
    ]
    assert health.deauthorizations(changes) == [
        Deauthorization(T, T + 2 * HOUR, REASON, "AUTHORIZED")
    ]


def test_changes_are_read_in_time_order() -> None:
    changes = [Change("AUTHORIZED", T + HOUR), Change("DEAUTHORIZED", T, REASON)]
    [found] = health.deauthorizations(changes)
    assert (found.started_at, found.ended_at) == (T, T + HOUR)


def test_deauthorizing_starts_it_and_the_deauthorized_change_gives_the_reason() -> None:
    changes = [
        Change("DEAUTHORIZING", T, "working on it"),
        Change("DEAUTHORIZED", T + timedelta(seconds=5), REASON),
    ]
    [found] = health.deauthorizations(changes)
    assert (found.started_at, found.ended_at, found.reason) == (T, None, REASON)


def test_a_deleted_connection_ends_the_episode() -> None:
    changes = [Change("DEAUTHORIZED", T), Change("DELETED", T + HOUR)]
    [found] = health.deauthorizations(changes)
    assert found.deleted
    assert found.ended_at == T + HOUR


def test_a_connection_deauthorized_before_any_recorded_change_is_open_since_its_last_change() -> (
    None
):
    found = health.deauthorizations(
        [], current_state="DEAUTHORIZED", current_reason=REASON, modified_at=T
    )
    assert found == [Deauthorization(T, None, REASON, recorded=False)]


def test_a_healthy_connection_has_no_deauthorization() -> None:
    assert health.deauthorizations([], current_state="AUTHORIZED", modified_at=T) == []
    assert health.deauthorizations([Change("AUTHORIZED", T), Change("UPDATING", T + HOUR)]) == []


def test_failed_connectivity_is_not_a_deauthorization() -> None:
    assert health.deauthorizations([Change("FAILED_CONNECTIVITY", T)]) == []


# --- plan -------------------------------------------------------------------------------------


def test_each_segment_starts_where_the_previous_deauthorization_ended() -> None:
    first = Deauthorization(T, T + HOUR, REASON)
    second = Deauthorization(T + 3 * HOUR, None, REASON)
    plan = health.plan([first, second], T - HOUR, T + 5 * HOUR)
    assert plan.horizon == T - HOUR - health.LOOKBACK
    assert [(s.since, s.until, s.deauthorization) for s in plan.segments] == [
        (plan.horizon, T + HOUR, first),
        (T + HOUR, None, second),
    ]


def test_after_the_last_reauthorization_a_segment_catches_failures_nobody_saw_coming() -> None:
    ended = Deauthorization(T, T + HOUR, REASON)
    plan = health.plan([ended], T - HOUR, T + 5 * HOUR)
    assert plan.segments[-1] == Segment(1, T + HOUR, None, None)


def test_without_any_deauthorization_the_whole_window_is_one_segment() -> None:
    plan = health.plan([], T, T + HOUR)
    assert plan.segments == (Segment(0, T - health.LOOKBACK, None, None),)


def test_only_deauthorizations_overlapping_the_window_are_planned() -> None:
    old = Deauthorization(T - 5 * HOUR, T - 4 * HOUR, "")
    later = Deauthorization(T + 5 * HOUR, None, "")
    plan = health.plan([old, later], T, T + HOUR)
    assert plan.segments == ()


def test_the_newest_episodes_are_kept_and_the_others_counted() -> None:
    deauths = [Deauthorization(T + i * HOUR, T + i * HOUR + HOUR / 2, "") for i in range(8)]
    plan = health.plan(deauths, T, T + 9 * HOUR, limit=5)
    shown = [s.deauthorization for s in plan.segments if s.deauthorization]
    assert shown == deauths[3:]
    assert plan.hidden == 3


def test_oauth_connections_look_back_only_minutes() -> None:
    plan = health.plan([], T, T + HOUR, "OAUTH_CLIENT_CREDENTIALS")
    assert plan.horizon == T - health.OAUTH_LOOKBACK
    assert health.latest_trigger_wins("OAUTH_CLIENT_CREDENTIALS")
    assert not health.latest_trigger_wins("BASIC")


# --- trigger windows --------------------------------------------------------------------------


def test_the_trigger_is_looked_for_before_the_recorded_change() -> None:
    plan = health.plan([Deauthorization(T, None, REASON)], T - HOUR, T + HOUR)
    windows = health.trigger_windows(plan, [])
    assert windows == {0: (T - health.LOOKBACK, T)}


def test_failures_before_a_late_observed_change_move_the_onset_earlier() -> None:
    previous = Deauthorization(T - 10 * HOUR, T - 9 * HOUR, "")
    current = Deauthorization(T, None, REASON)
    plan = health.plan([previous, current], T - 12 * HOUR, T + HOUR)
    windows = health.trigger_windows(plan, [hit(1, at=T - 5 * HOUR)])
    # Never before the previous re-authorization: that 401 was answered already.
    assert windows[1] == (T - 9 * HOUR, T - 5 * HOUR)


def test_oauth_trigger_window_is_short() -> None:
    auth = "OAUTH_CLIENT_CREDENTIALS"
    plan = health.plan([Deauthorization(T, None, REASON)], T - HOUR, T + HOUR, auth)
    assert health.trigger_windows(plan, [], auth) == {0: (T - health.OAUTH_LOOKBACK, T)}


def test_a_quiet_segment_without_a_deauthorization_needs_no_trigger() -> None:
    plan = health.plan([], T, T + HOUR)
    assert health.trigger_windows(plan, []) == {}


# --- episodes ---------------------------------------------------------------------------------


def test_an_episode_adds_up_its_state_machines_and_accounts() -> None:
    deauth = Deauthorization(T, None, REASON)
    plan = health.plan([deauth], T - HOUR, T + HOUR)
    hits = [hit(0, 1, failures=30), hit(0, 2, failures=5), hit(0, 3, failures=2)]
    [episode] = health.episodes(plan, hits, {0: trigger(T - timedelta(seconds=2))}, ARN)
    assert (episode.failures, episode.executions, episode.machines) == (37, 37, 3)
    assert episode.accounts == ("account-0", "account-1")
    assert episode.ongoing and episode.recorded
    assert episode.started_at == T
    assert [r.hit.state_machine for r in episode.rows] == ["Machine1", "Machine2", "Machine3"]


def test_episodes_are_newest_first_and_quiet_stretches_are_dropped() -> None:
    first = Deauthorization(T, T + HOUR, REASON)
    plan = health.plan([first], T - HOUR, T + 5 * HOUR)
    assert [e.deauthorization for e in health.episodes(plan, [], {}, ARN)] == [first]
    inferred = hit(1, at=T + 3 * HOUR)
    newest, older = health.episodes(plan, [inferred], {}, ARN)
    assert newest.deauthorization is None and not newest.ongoing and not newest.recorded
    assert newest.started_at == T + 3 * HOUR
    assert older.duration_seconds == 3600


def test_each_machine_links_to_exactly_its_failures_in_the_list() -> None:
    deauth = Deauthorization(T, T + HOUR, REASON)
    plan = health.plan([deauth], T - HOUR, T + 2 * HOUR)
    one = hit(0, 4, at=T + timedelta(seconds=1, microseconds=500))
    [episode] = health.episodes(plan, [one], {}, ARN)
    query = parse_qs(episode.rows[0].list_query)
    assert query == {
        "connection": [ARN],
        "state_machine": ["4"],
        "q": [INVALID_STATE],
        "since": ["2025-03-10 14:02:01"],
        "until": ["2025-03-10 15:02:01"],
    }


def test_trigger_shows_its_status_and_a_short_path() -> None:
    assert trigger().status == "401"
    assert trigger().path == "/v1/customers/{id}"
    no_status = Trigger(**{**trigger().__dict__, "status_code": None})
    assert no_status.status == "401"
    assert trigger(endpoint="not a url").path == "not a url"


# --- links from failure groups ----------------------------------------------------------------


def test_cascade_groups_link_once_per_connection_with_a_window_that_shows_them() -> None:
    crm = Conn(1, "crm", "DEAUTHORIZED")
    groups = [
        Group(INVALID_STATE, T - 3 * timedelta(days=1), crm),
        Group(INVALID_STATE, T - 2 * HOUR, crm),
        Group("States.Http.StatusCode.503", T, Conn(2, "ledger")),
        Group(INVALID_STATE, T, None),  # connection not registered: no page to link
    ]
    assert health.cascade_links(groups, T) == [health.CascadeLink(1, "crm", True, "6h")]


def test_window_for_falls_back_to_the_longest_preset() -> None:
    assert health.window_for(T - timedelta(minutes=5), T) == "1h"
    assert health.window_for(T - timedelta(days=300), T) == "30d"
