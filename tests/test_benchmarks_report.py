"""The benchmark report renders whatever a run measured, however short the run."""

from benchmarks.load import Load
from benchmarks.report import Results, summary
from benchmarks.twins import NETSUITE_UPSERT, CallCapacity, netsuite_put_capacity


def capacity(call: str, twin_cpu: float) -> CallCapacity:
    return CallCapacity("netsuite", call, 1, Load(calls=10, seconds=0.02, latencies=[0.002] * 10,
                                                  generator_cpu=0.01), twin_cpu)


def test_a_twin_too_quick_for_proc_to_register_cpu_has_no_capacity_and_the_report_says_so() -> None:
    # /proc counts CPU in 10 ms ticks: ten fast calls can add up to none
    measured = capacity(NETSUITE_UPSERT, twin_cpu=0.0)
    assert measured.one_core_capacity is None
    assert netsuite_put_capacity([measured]) is None
    printed = summary(Results(twins=[measured]))
    row = next(line for line in printed.splitlines() if NETSUITE_UPSERT in line)
    assert "| 0.00 | — |" in row


def test_a_twin_capacity_is_calls_per_cpu_second() -> None:
    measured = capacity(NETSUITE_UPSERT, twin_cpu=0.004)  # 0.4 ms a call
    assert netsuite_put_capacity([capacity("other", 0.001), measured]) == 2500
    assert "| 0.40 | 2,500 |" in summary(Results(twins=[measured]))
