"""`make bench`'s CPU comparison: ours beside the skeleton's, for the whole stack and for our servers
alone (Stripe's stand-in and the load generator are not work production runs)."""

from collections import Counter

from bench import ceiling, costs


def _counts(cpu: dict[str, float]) -> costs.Counts:
    return costs.Counts(cpu, *(Counter[str]() for _ in range(7)))


def test_the_comparison_gives_the_whole_stack_and_our_servers_their_own_ratio() -> None:
    ours = _counts(
        {"temporal": 4.0, "api": 2.0, "worker": 3.0, "postgres": 0.5, "stripe-emulator": 1.0, "load generator": 1.0}
    )
    skeleton = _counts(
        {"temporal": 4.0, f"{ceiling.ROLE_PREFIX}api": 1.0, f"{ceiling.ROLE_PREFIX}worker": 2.0, "load generator": 1.0}
    )
    lines = costs.shares(ours, 100, skeleton, 100).splitlines()
    totals = {line.split()[0]: line.split() for line in lines if line.startswith(("  total", "  our servers"))}
    assert totals["total"][1:4] == ["115.0", "80.0", "1.44x"]  # 11.5 s and 8 s of CPU over 100 payments
    assert totals["our"][2:5] == ["95.0", "70.0", "1.36x"]  # without the emulator and the load generator


def test_rounds_add_up_process_by_process_and_counter_by_counter() -> None:
    first = costs.Counts({"temporal": 1.0, "api": 0.5}, *(Counter({"x": 2}) for _ in range(7)))
    second = costs.Counts({"temporal": 2.0, "worker": 1.0}, *(Counter({"x": 1, "y": 1}) for _ in range(7)))
    both = first + second
    assert both.cpu == {"temporal": 3.0, "api": 0.5, "worker": 1.0}
    assert both.http == both.own_moves == Counter({"x": 3, "y": 1})
    assert (both - second).redis == first.redis


def test_the_ratio_of_rounds_together_is_of_their_sums() -> None:
    """Rounds of 10 and 30 payments: the ratio of the sums (11 s over 40 payments against 4 s over
    20: 1.375x), not the mean of the rounds' ratios (1.25x)."""
    skeleton = _counts({"temporal": 1.0, f"{ceiling.ROLE_PREFIX}api": 1.0})  # 2 s over 10 payments
    ours = [(_counts({"temporal": 1.0, "api": 1.0}), 10), (_counts({"temporal": 4.5, "api": 4.5}), 30)]
    assert costs.ratios(*ours[0], skeleton, 10)["total"] == 1.0
    assert costs.ratios(*ours[1], skeleton, 10)["total"] == 1.5
    together = (ours[0][0] + ours[1][0], 40)
    assert costs.ratios(*together, skeleton + skeleton, 20)["total"] == 1.375
