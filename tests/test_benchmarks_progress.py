"""A long benchmark stretch says how far it has got while it runs."""

import time

import pytest
from benchmarks.progress import ticking


def test_a_long_stretch_prints_its_progress_until_it_ends(capsys: pytest.CaptureFixture[str]) -> None:
    done = [0]
    with ticking(lambda: f"{done[0]} done", every=0.02):
        for _ in range(10):
            done[0] += 1
            time.sleep(0.01)
    printed = capsys.readouterr().out.splitlines()
    assert printed and all(line.endswith(" done") for line in printed)
    assert int(printed[0].split()[0]) < 10  # said while it ran, not after
    time.sleep(0.05)
    assert capsys.readouterr().out == ""  # and stopped with the block
