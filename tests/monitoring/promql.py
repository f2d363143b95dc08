"""Just enough PromQL reading to list the metric names an expression selects.

Used to check that every metric named in an alert rule or a dashboard query
is one Coves exports (a typo or a renamed metric would leave an alert that
can never fire). Prometheus itself validates the syntax (promtool for the
rules, its query API for the dashboards); this only has to find the
selectors: identifiers that are not functions, keywords, label names or
durations.
"""

from __future__ import annotations

import re
from pathlib import Path

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_GROUPING = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_RANGE = re.compile(r"\[[^\[\]]*\]")
_IDENT = re.compile(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
        "atan2",
    }
)
# Series Prometheus makes itself for every target, not Coves' to export.
PROMETHEUS_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})


def metric_names(expr: str) -> set[str]:
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _GROUPING.sub("", text)
    text = _RANGE.sub("", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def dashboard_expressions(path: Path) -> list[str]:
    import json

    data = json.loads(path.read_text())
    return [target["expr"] for panel in data["panels"] for target in panel["targets"]]


def for_prometheus(expr: str, rate_interval: str = "1m") -> str:
    """A dashboard query as Prometheus takes it: Grafana's variables substituted."""
    return expr.replace("$__rate_interval", rate_interval).replace('"$instance"', '".*"')


def exported_names(exposition: str) -> set[str]:
    """Every series name a /metrics text can carry, families without samples included."""
    from prometheus_client.parser import text_string_to_metric_families

    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        base = family.name
        if family.type == "counter":
            names |= {base + "_total", base + "_created"}
        elif family.type == "histogram":
            names |= {base + "_bucket", base + "_count", base + "_sum", base + "_created"}
        elif family.type == "summary":
            names |= {base, base + "_count", base + "_sum", base + "_created"}
        else:
            names.add(base)
        names |= {sample.name for sample in family.samples}
    return names
