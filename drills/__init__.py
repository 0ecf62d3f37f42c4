"""Drills: lose one store on a throwaway stack under payment load, bring it back, and print what it
cost (what was in flight, seconds to come back and to settle: RPO and RTO) with the money checks of
devstack/money_checks.py; a drill exits non-zero when money is lost or moved twice.
`python -m drills NAME [--count N] [--seed N]`; the drills are listed in drills/__main__.py."""
