"""The adaptive limiter (AIMD) and the configured budget it starts from, on a fake clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest

from handoff.config import load_settings
from handoff.connectors.budget import NO_OVERRIDE, BudgetOverride, budget_override
from handoff.connectors.hubspot.client import HubSpotConnector, configured_budget
from handoff.connectors.hubspot.settings import HubSpotSettings
from handoff.connectors.pacing_adaptive import AdaptiveLimiter, AimdLimit
from handoff.connectors.ports import RateBudget
from handoff.connectors.registry import SECRETS, connect_billing, connect_crm, connect_erp
from handoff.errors import ConfigError, ThrottledError, TransientError

NETSUITE_LIKE = RateBudget(requests=None, window_seconds=None, concurrency=15, source="vendor")
HUBSPOT_LIKE = RateBudget(requests=10, window_seconds=1.0, concurrency=None, source="vendor")


class FakeClock:
    """Time that passes only when a caller sleeps (or a test says so)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(budget: RateBudget, clock: FakeClock, **options: float) -> AdaptiveLimiter:
    return AdaptiveLimiter(budget, clock=clock, sleep=clock.sleep, **options)  # type: ignore[arg-type]


def call(pacer: AdaptiveLimiter, answer: Callable[[], None] = lambda: None) -> None:
    with pacer.slot():
        answer()


def throttled(retry_after: float | None = None) -> Callable[[], None]:
    def answer() -> None:
        raise ThrottledError("429 Too Many Requests", system="twin", retry_after=retry_after)
    return answer


def succeed(pacer: AdaptiveLimiter, times: int) -> None:
    for _ in range(times):
        call(pacer)


def refused(pacer: AdaptiveLimiter, retry_after: float | None = None) -> None:
    with pytest.raises(ThrottledError):
        call(pacer, throttled(retry_after))


# --- concurrency ---------------------------------------------------------------------------

def test_calls_in_flight_never_exceed_the_concurrency_across_threads() -> None:
    pacer = AdaptiveLimiter(RateBudget(None, None, concurrency=3, source="test"))
    in_flight, peak, lock = 0, 0, threading.Lock()

    def one_call() -> None:
        nonlocal in_flight, peak
        with pacer.slot():
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            time.sleep(0.002)
            with lock:
                in_flight -= 1

    threads = [threading.Thread(target=lambda: [one_call() for _ in range(20)]) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert peak == 3 and pacer.in_flight == 0


def test_a_429_halves_the_concurrency_once_for_calls_that_were_already_in_flight() -> None:
    clock = FakeClock()
    pacer = limiter(NETSUITE_LIKE, clock)
    with pytest.raises(ThrottledError), ExitStack() as four_calls:
        for _ in range(4):
            four_calls.enter_context(pacer.slot())  # all in flight before any refusal …
        throttled()()  # … and all four refused at one moment
    assert pacer.in_flight == 0
    assert pacer.concurrency is not None and pacer.concurrency.current == 7  # 15 → 7, once
    refused(pacer)  # started after the cut: news, cut again
    assert pacer.concurrency.current == 3
    for _ in range(20):
        refused(pacer)
    assert pacer.concurrency.current == 1  # never below 1


def test_successes_win_the_concurrency_back_step_by_step_never_above_the_budget() -> None:
    clock = FakeClock()
    pacer = limiter(RateBudget(None, None, concurrency=8, source="test"), clock, caution=1)
    refused(pacer)
    assert pacer.concurrency is not None and pacer.concurrency.current == 4
    for _ in range(4):
        call(pacer)
    assert pacer.concurrency.current == 5  # one step per limit's worth of successes
    for _ in range(1000):
        call(pacer)
    assert pacer.concurrency.current == 8


def test_the_step_back_to_the_level_refused_is_taken_slowly() -> None:
    clock = FakeClock()
    pacer = limiter(RateBudget(None, None, concurrency=15, source="test"), clock, caution=8)
    refused(pacer)  # refused at 15: down to 7
    assert pacer.concurrency is not None
    for _ in range(7 + 8 + 9 + 10 + 11 + 12 + 13):  # the steps from 7 up to 14 at the usual pace
        call(pacer)
    assert pacer.concurrency.current == 14
    for _ in range(14 * 8 - 1):
        call(pacer)
    assert pacer.concurrency.current == 14  # 15 drew the 429: dwell under it
    call(pacer)
    assert pacer.concurrency.current == 15


def test_a_large_budget_is_won_back_in_steps_of_a_sixteenth_stopping_under_the_refusal() -> None:
    clock = FakeClock()
    pacer = limiter(RateBudget(None, None, concurrency=190, source="test"), clock, caution=2)
    refused(pacer)
    assert pacer.concurrency is not None
    climbs_by_sixteenths_to_just_under_190(pacer, pacer.concurrency, caution=2)
    succeed(pacer, 189 * 2)
    assert pacer.concurrency.current == 190  # never above the budget


def climbs_by_sixteenths_to_just_under_190(pacer: AdaptiveLimiter, limit: AimdLimit, caution: int) -> None:
    """From 95, halved from a budget of 190 that drew the 429: steps of 11, then one under 190."""
    assert limit.current == 95
    succeed(pacer, 95)
    assert limit.current == 95 + 11
    while limit.current < 189:
        call(pacer)
    succeed(pacer, 189 * caution - 1)
    assert limit.current == 189  # one under the 190 that drew the 429, dwelling there


# --- the window ----------------------------------------------------------------------------

def test_calls_in_any_window_never_exceed_the_budget() -> None:
    clock = FakeClock()
    pacer = limiter(HUBSPOT_LIKE, clock)
    started: list[float] = []
    for _ in range(35):
        with pacer.slot():
            started.append(clock.now)
            clock.now += 0.01  # the call takes 10 ms
    for first in started:
        assert sum(1 for t in started if first <= t < first + 1.0) <= 10
    assert started[-1] - started[0] < 3 * 1.01 + 0.2  # and it keeps the pace, not slower


def test_a_429_halves_the_rate_and_successes_win_it_back_up_to_the_budget() -> None:
    clock = FakeClock()
    pacer = limiter(HUBSPOT_LIKE, clock, caution=1)
    refused(pacer)
    assert pacer.requests is not None and pacer.requests.current == 5
    for _ in range(5):
        call(pacer)
    assert pacer.requests.current == 6
    for _ in range(500):
        call(pacer)
    assert pacer.requests.current == 10


HUBSPOT_190 = RateBudget(requests=190, window_seconds=1.0, concurrency=None, source="vendor")


def test_a_429_in_a_busy_window_dwells_under_what_the_system_admitted_not_under_the_old_rate() -> None:
    clock = FakeClock()
    pacer = limiter(HUBSPOT_190, clock, caution=4)
    succeed(pacer, 100)  # the system lets 100 through, then refuses: its limit is now 100
    refused(pacer)
    assert pacer.requests is not None and pacer.requests.current == 95
    succeed(pacer, 95)
    assert pacer.requests.current == 100  # a step of 11 stops at what was admitted
    succeed(pacer, 100 * 4 - 1)
    assert pacer.requests.current == 100  # dwells there; the probe above is four times slower
    call(pacer)
    assert pacer.requests.current == 101


def test_a_429_in_an_idle_window_says_nothing_of_the_level_and_the_climb_stops_under_the_old_rate() -> None:
    clock = FakeClock()
    pacer = limiter(HUBSPOT_190, clock, caution=4)
    succeed(pacer, 3)
    clock.now += 2.0  # the window is empty: the 429 was drawn by another client of the budget
    refused(pacer)
    assert pacer.requests is not None
    climbs_by_sixteenths_to_just_under_190(pacer, pacer.requests, caution=4)


DATAVERSE_LIKE = RateBudget(requests=6000, window_seconds=300.0, concurrency=52, source="vendor")


def test_a_long_window_keeps_its_budget_after_a_429_and_honours_the_wait_instead() -> None:
    clock = FakeClock()
    pacer = limiter(DATAVERSE_LIKE, clock)
    for _ in range(100):
        call(pacer)
    refused(pacer, retry_after=0.25)
    assert pacer.requests is not None and pacer.requests.current == 6000  # not learnt: 300 s
    assert pacer.concurrency is not None and pacer.concurrency.current == 26  # learnt
    call(pacer)  # after the quarter second it was told, not after the window
    assert clock.slept == [pytest.approx(0.25)]


def test_a_full_window_refuses_a_call_at_once_when_the_next_fits_only_later() -> None:
    clock = FakeClock()
    pacer = limiter(RateBudget(requests=3, window_seconds=300.0, concurrency=None, source="v"), clock)
    for _ in range(3):
        call(pacer)
    clock.now += 10.0
    made: list[int] = []
    with pytest.raises(ThrottledError) as caught:
        call(pacer, lambda: made.append(1))
    assert made == [] and clock.slept == [] and caught.value.retry_after == pytest.approx(290.0)
    assert "3 calls per 300 s are spent; the next fits in 290 s" in str(caught.value)
    clock.now += 287.0
    call(pacer, lambda: made.append(1))  # 3 s left: slept, then made
    assert made == [1] and clock.slept == [pytest.approx(3.0)]


# --- Retry-After ---------------------------------------------------------------------------

def test_no_call_starts_before_the_retry_after() -> None:
    clock = FakeClock()
    pacer = limiter(NETSUITE_LIKE, clock)
    refused(pacer, retry_after=2.0)
    refused_at = clock.now
    with pacer.slot():
        started = clock.now
    assert started == refused_at + 2.0


def test_a_long_retry_after_refuses_calls_without_making_them() -> None:
    clock = FakeClock()
    pacer = limiter(HUBSPOT_LIKE, clock, longest_sleep=5.0)
    refused(pacer, retry_after=60.0)
    made: list[int] = []
    with pytest.raises(ThrottledError) as caught:
        call(pacer, lambda: made.append(1))
    assert made == [] and clock.slept == []
    assert caught.value.retry_after == pytest.approx(60.0)
    assert "429 Too Many Requests" in str(caught.value) and caught.value.system == "twin"
    clock.now += 56.0
    call(pacer, lambda: made.append(1))  # 4 s left: slept, then made
    assert made == [1] and clock.slept == [pytest.approx(4.0)]


def test_other_failures_neither_slow_down_nor_speed_up() -> None:
    clock = FakeClock()
    pacer = limiter(NETSUITE_LIKE, clock, caution=1)
    refused(pacer)

    def unavailable() -> None:
        raise TransientError("503", system="twin")

    for _ in range(50):
        with pytest.raises(TransientError):
            call(pacer, unavailable)
    assert pacer.concurrency is not None and pacer.concurrency.current == 7
    assert pacer.in_flight == 0


# --- the configured budget -----------------------------------------------------------------

def test_the_configuration_overrides_the_vendors_figures_it_names() -> None:
    override = budget_override("netsuite", {"concurrency": 5})
    budget = override.applied_to(NETSUITE_LIKE, "netsuite")
    assert (budget.requests, budget.window_seconds, budget.concurrency) == (None, None, 5)
    assert budget.source == "configured: concurrency = 5; vendor: vendor"
    hubspot = budget_override("hubspot", {"requests": 100, "window_seconds": 10})
    assert hubspot.applied_to(HUBSPOT_LIKE, "hubspot").requests == 100
    assert budget_override("netsuite", None) is NO_OVERRIDE
    assert NO_OVERRIDE.applied_to(NETSUITE_LIKE, "netsuite") is NETSUITE_LIKE


@pytest.mark.parametrize(("table", "message"), [
    ({"concurrency": 0}, "[systems.netsuite.budget] concurrency: 0 must be a whole number of 1 or more"),
    ({"concurrency": 2.5}, "[systems.netsuite.budget] concurrency: 2.5 must be a whole number"),
    ({"requests": True}, "[systems.netsuite.budget] requests: True must be a whole number"),
    ({"window_seconds": -1}, "[systems.netsuite.budget] window_seconds: -1 must be a number of seconds"),
    ({"window_seconds": "10"}, "[systems.netsuite.budget] window_seconds: '10' must be a number"),
    ({"rate": 5}, "[systems.netsuite.budget]: unknown key(s) rate; known: concurrency, requests"),
    ("fast", "[systems.netsuite.budget]: must be a table"),
])
def test_a_bad_budget_is_one_line_naming_its_key(table: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        budget_override("netsuite", table)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_requests_without_a_window_are_refused_where_the_vendor_has_none() -> None:
    with pytest.raises(ConfigError, match=r"\[systems.netsuite.budget\]: requests and window_seconds"):
        BudgetOverride(requests=100).applied_to(NETSUITE_LIKE, "netsuite")


def test_the_budget_table_of_the_configuration_file_reaches_the_connector(tmp_path: Path) -> None:
    config = tmp_path / "handoff.toml"
    config.write_text('[systems]\ncrm = "hubspot"\nerp = "netsuite"\n\n'
                      '[systems.netsuite]\nbase_url = "http://127.0.0.1:9/services/rest"\n\n'
                      '[systems.netsuite.budget]\nconcurrency = 5\n\n'
                      '[systems.hubspot.budget]\nrequests = 100\nwindow_seconds = 10\n')
    env = {"HANDOFF_NETSUITE_TOKEN": "t", "HANDOFF_HUBSPOT_ACCESS_TOKEN": "t"}
    systems = load_settings(config, env={}).systems
    with connect_erp(systems, env) as erp, connect_crm(systems, env) as crm:  # type: ignore[attr-defined]
        assert erp.budget.concurrency == 5 and crm.budget.requests == 100
    config.write_text(config.read_text().replace("concurrency = 5", "concurrency = 0"))
    with pytest.raises(ConfigError, match=r"^\[systems.netsuite.budget\] concurrency: 0 must be"):
        connect_erp(load_settings(config, env={}).systems, env)


LOCAL = "http://127.0.0.1:9"
EVERY_SYSTEM = {  # role and the least of a [systems.<name>] table
    "salesforce": ("crm", {"instance_url": LOCAL}),
    "hubspot": ("crm", {"base_url": LOCAL}),
    "dynamics": ("crm", {"base_url": LOCAL}),
    "netsuite": ("erp", {"base_url": f"{LOCAL}/services/rest"}),
    "businesscentral": ("erp", {"tenant": "contoso.onmicrosoft.com", "environment": "sandbox",
                                "company_id": "00000000-0000-0000-0000-000000000001", "api_root": LOCAL}),
    "oracle": ("erp", {"base_url": LOCAL}),
    "sap": ("erp", {"base_url": LOCAL}),
    "tryton": ("erp", {"url": f"{LOCAL}/", "database": "tryton", "user": "handoff"}),
    "stripe": ("billing", {"base_url": LOCAL}),
}
EVERY_SECRET = {variable: "sk_test_secret" for names in SECRETS.values() for variable in names.values()
                if variable != "HANDOFF_ORACLE_TOKEN"}  # Oracle takes a user or a token, not both


@pytest.mark.parametrize("system", sorted(EVERY_SYSTEM))
def test_every_connector_takes_its_budget_from_the_configuration(system: str) -> None:
    role, table = EVERY_SYSTEM[system]
    systems = {role: system, system: {**table, "budget": {"concurrency": 3}}}
    connect = {"crm": lambda: connect_crm(systems, EVERY_SECRET),
               "erp": lambda: connect_erp(systems, EVERY_SECRET),
               "billing": lambda: connect_billing(systems, None, EVERY_SECRET)}[role]
    connector = connect()
    assert connector.budget.concurrency == 3
    assert connector.budget.source.startswith("configured: concurrency = 3; vendor: ")
    systems[system]["budget"] = {"concurency": 3}
    with pytest.raises(ConfigError, match=rf"^\[systems.{system}.budget\]: unknown key\(s\) concurency"):
        connect()


def test_hubspot_keeps_its_published_budget_unless_configured() -> None:
    default = HubSpotSettings(access_token="t")
    assert configured_budget(default) is HubSpotConnector.budget  # 190 per 10 s
    older = HubSpotSettings(access_token="t", requests_per_window=150)
    assert (configured_budget(older).requests, configured_budget(older).window_seconds) == (150, 10.0)
    both = HubSpotSettings(access_token="t", requests_per_window=150, budget={"requests": 120})
    assert configured_budget(both).requests == 120  # the budget table wins
