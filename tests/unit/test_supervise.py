"""The restart policy of ``forewarn up``: backoff, reset after a stable run, give up on a crash loop."""

from forewarn.supervise import RestartPolicy, Restarts, exit_description


def test_deaths_in_a_row_back_off_doubling_up_to_the_cap() -> None:
    policy = RestartPolicy(first_delay_s=1, max_delay_s=30, stable_after_s=60, max_deaths=100, window_s=300)
    restarts = Restarts("ingest", policy)
    now, delays = 0.0, []
    for _ in range(8):
        verdict = restarts.died(at=now + 0.5, started_at=now)  # dies half a second after each start
        assert verdict.restart_in_s is not None
        delays.append(verdict.restart_in_s)
        now += 0.5 + verdict.restart_in_s
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]


def test_a_stable_run_starts_the_backoff_again() -> None:
    restarts = Restarts("worker", RestartPolicy(stable_after_s=60, max_deaths=100))
    assert restarts.died(at=1, started_at=0).restart_in_s == 1
    assert restarts.died(at=10, started_at=5).restart_in_s == 2
    assert restarts.died(at=20, started_at=15).restart_in_s == 4
    assert restarts.died(at=200, started_at=100).restart_in_s == 1, "ran 100 s: healthy, back to the first delay"


def test_a_crash_loop_is_given_up_with_the_reason() -> None:
    restarts = Restarts("worker", RestartPolicy(max_deaths=5, window_s=300))
    verdicts = [restarts.died(at=t * 10.0 + 1, started_at=t * 10.0) for t in range(5)]
    assert all(v.restart_in_s is not None for v in verdicts[:4])
    last = verdicts[4]
    assert last.restart_in_s is None
    assert "worker died 5 times within 5 min" in last.reason and "crash loop" in last.reason


def test_deaths_spread_wider_than_the_window_never_give_up() -> None:
    restarts = Restarts("api", RestartPolicy(max_deaths=3, window_s=300))
    for k in range(20):  # one death every 200 s, after a stable run each time
        verdict = restarts.died(at=k * 200.0 + 150, started_at=k * 200.0)
        assert verdict.restart_in_s == 1, verdict.reason


def test_exit_codes_read_as_a_person_reads_them() -> None:
    assert exit_description(1) == "exit code 1"
    assert exit_description(0) == "exit code 0"
    assert exit_description(-9) == "killed by SIGKILL"
    assert exit_description(-15) == "killed by SIGTERM"
