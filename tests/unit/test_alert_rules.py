"""The alert rules beside the dashboard are well-formed Prometheus rules, read only metrics that are
exported, cover each metric that says a payment is in an unknown state, are on the dashboard, and
are explained in the README."""

import re
from pathlib import Path

import yaml

from tests.exported_metrics import metrics_in, queryable
from tests.unit.test_dashboard import queried_by_dashboard

ROOT = Path(__file__).parents[2]
RULES = ROOT / "dashboards" / "alerts.yml"
DURATION = re.compile(r"^(?:\d+[smhdwy])+$")
# Issue 25's "no payment left in an unknown state, visibly": each of these has an alert.
WATCHED = {
    "payments_open_payment_age_seconds",
    "payments_stripe_disagreements",
    "payments_stripe_ahead_total",
    "workflow_task_attempt_count",
}


def alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    assert groups and all(set(group) == {"name", "rules"} for group in groups)
    return [rule for group in groups for rule in group["rules"]]


def test_each_rule_is_a_complete_alert() -> None:
    rules = alerts()
    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert DURATION.match(rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
        assert re.search(r"[<>]=?|==|!=", rule["expr"]), f"{rule['alert']} compares with no threshold"


def test_every_alert_reads_only_exported_metrics_and_each_watched_metric_has_one() -> None:
    read = {rule["alert"]: metrics_in(rule["expr"]) for rule in alerts()}
    for alert, names in read.items():
        assert names and names <= queryable(), (alert, names - queryable())
    assert WATCHED <= set().union(*read.values())


def test_the_dashboard_shows_what_the_alerts_watch() -> None:
    assert WATCHED <= queried_by_dashboard()


def test_the_readme_says_what_each_alert_means_and_what_to_do() -> None:
    readme = (ROOT / "README.md").read_text()
    for rule in alerts():
        assert re.search(rf"^#+ {rule['alert']}$", readme, re.MULTILINE), rule["alert"]
        assert rule["annotations"]["runbook"] == f"README.md#{rule['alert'].lower()}"
