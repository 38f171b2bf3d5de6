"""The benchmark report renders whatever a run measured, however short the run."""

from benchmarks.load import Load
from benchmarks.report import Results, summary
from benchmarks.twins import NETSUITE_UPSERT, CallCapacity, netsuite_put_rate


def capacity(call: str, twin_cpu: float, calls: int = 10) -> CallCapacity:
    return CallCapacity("netsuite", call, 1, Load(calls=calls, seconds=0.02, latencies=[0.002] * calls,
                                                  generator_cpu=0.01), twin_cpu)


def test_a_twin_too_quick_for_proc_to_register_cpu_has_no_capacity_and_the_report_says_so() -> None:
    # /proc counts CPU in 10 ms ticks: ten fast calls can add up to none
    measured = capacity(NETSUITE_UPSERT, twin_cpu=0.0)
    assert measured.one_core_capacity is None
    printed = summary(Results(twins=[measured]))
    row = next(line for line in printed.splitlines() if NETSUITE_UPSERT in line)
    assert "| 0.00 | — |" in row


def test_a_twin_capacity_is_calls_per_cpu_second_and_the_ceiling_its_measured_rate() -> None:
    measured = capacity(NETSUITE_UPSERT, twin_cpu=0.004)  # 0.4 ms a call
    assert measured.one_core_capacity == 2500
    assert "| 0.40 | 2,500 |" in summary(Results(twins=[measured]))
    assert netsuite_put_rate([capacity("other", 0.001, calls=4), measured]) == 500  # 10 in 0.02 s
