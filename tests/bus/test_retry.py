"""One retry policy and one poll schedule (bus/retry.py): failed calls are retried with the same
doubling delays as always, up to a cap and a number of attempts; pending remote effects are asked
less and less often, at most 10 times in their first hour and 30 times in their first day."""

from __future__ import annotations

import pytest

from bus.config import Settings
from bus.retry import PollSchedule, RetryPolicy
from bus.stages.runner import RunnerSettings
from bus.webhooks import DeliverySettings


def test_delays_double_from_the_initial_interval_up_to_the_cap() -> None:
    policy = RetryPolicy(initial_interval=1.0, maximum_interval=60.0)
    assert [policy.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert policy.delay(0) == 1.0  # no attempt counted yet: the first delay
    assert RetryPolicy(initial_interval=0.5, backoff_coefficient=3.0, maximum_interval=10.0).delay(3) == 4.5


def test_the_stage_settings_keep_their_delays() -> None:
    """The formula the runner, the annulations and the préfecture replies wrote by hand."""
    for settings in (Settings(), RunnerSettings(), RunnerSettings(retry_backoff=0.3, retry_backoff_max=5.0)):
        policy = RetryPolicy.from_settings(settings)
        for attempts in range(1, 20):
            assert policy.delay(attempts) == min(settings.retry_backoff * 2 ** (attempts - 1),
                                                 settings.retry_backoff_max)
    assert RunnerSettings(max_attempts=4).retry == RetryPolicy(1.0, 2.0, 60.0, 4)


def test_the_webhook_settings_keep_their_delays() -> None:
    settings = Settings()
    policy = RetryPolicy.from_settings(settings, prefix="webhook_")
    assert policy == RetryPolicy(settings.webhook_retry_backoff, 2.0, settings.webhook_retry_backoff_max,
                                 settings.webhook_max_attempts)
    delivery = DeliverySettings(backoff=settings.webhook_retry_backoff, backoff_max=settings.webhook_retry_backoff_max,
                                max_attempts=settings.webhook_max_attempts)
    assert delivery.retry == policy
    assert [policy.delay(n) for n in (1, 2, 10, 11, 14)] == [1, 2, 512, 600, 600]


def test_attempts_are_exhausted_at_the_maximum_and_never_when_unlimited() -> None:
    policy = RetryPolicy(maximum_attempts=5)
    assert [policy.exhausted(n) for n in range(1, 7)] == [False, False, False, False, True, True]
    assert not any(RetryPolicy(maximum_attempts=0).exhausted(n) for n in range(1, 1000))


def test_a_policy_refuses_nonsense() -> None:
    for bad in ({"initial_interval": -1}, {"backoff_coefficient": 0.5}, {"maximum_attempts": -1}):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PollSchedule(initial_interval=0)


def poll_ages(schedule: PollSchedule, until: float) -> list[float]:
    """The ages at which a pending effect is polled, the first poll right after its submission."""
    ages, age = [], 0.0
    while age <= until:
        ages.append(age)
        age += schedule.delay(age)
    return ages


@pytest.mark.parametrize("poll_interval", [1.0, 2.0, 5.0, 30.0])
def test_a_pending_effect_is_polled_at_most_10_times_in_an_hour_and_30_in_a_day(poll_interval: float) -> None:
    schedule = PollSchedule.from_settings(Settings(poll_interval=poll_interval))
    assert len(poll_ages(schedule, 3600)) <= 10
    assert len(poll_ages(schedule, 86_400)) <= 30
    assert len(poll_ages(PollSchedule.from_settings(RunnerSettings(poll_interval=poll_interval)), 86_400)) <= 30


def test_polls_slow_down_with_the_age_between_the_interval_and_the_cap() -> None:
    schedule = PollSchedule(initial_interval=1.0, maximum_interval=7200.0)
    assert schedule.delay(0) == 1.0  # a fresh submission is asked again after the interval
    assert schedule.delay(60) == 90.0  # then 1.5 times its age
    assert schedule.delay(3 * 86_400) == 7200.0
    delays = [schedule.delay(t) for t in range(0, 100_000, 50)]
    assert delays == sorted(delays)
    ages = poll_ages(schedule, 86_400)
    gaps = [b - a for a, b in zip(ages, ages[1:])]
    assert min(gaps) >= 1.0 and max(gaps) <= 7200.0


def test_a_cap_below_the_interval_never_polls_faster_than_the_interval() -> None:
    assert PollSchedule.from_settings(RunnerSettings(poll_interval=2.0, poll_interval_max=0.5)).delay(10_000) == 2.0


def test_a_failed_poll_waits_the_interval_or_the_retry_backoff() -> None:
    assert RunnerSettings(poll_interval=1.0, retry_backoff=3.0).polls.error_interval == 3.0
    assert RunnerSettings(poll_interval=5.0, retry_backoff=3.0).polls.error_interval == 5.0
