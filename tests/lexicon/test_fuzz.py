"""Hostile input never escapes as anything but LexiconValidationError / XRPCError 400."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from coves.errors import XRPCError
from coves.lexicon import LexiconRegistry, LexiconValidationError
from tests.lexicon.examples import EXAMPLES, example

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["$type", "$link", "$bytes", "ref", "cid", "mimeType", "size", "uri", "x"]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)
CASES = [(nsid, i) for nsid, values in EXAMPLES.items() for i in range(len(values))]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out.extend(_paths(child, (*prefix, index)))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = new
    return value


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(CASES), st.data(), JSON)
def test_mutated_records_fail_cleanly(
    registry: LexiconRegistry, case: tuple[str, int], data: st.DataObject, junk: Any
) -> None:
    nsid, index = case
    record = example(nsid, index)
    path = data.draw(st.sampled_from(_paths(record)))
    mutated = _replace(record, path, junk)
    try:
        registry.validate_record(nsid, mutated)
    except LexiconValidationError as err:
        assert err.path and err.message
        assert str(err) == f"{err.path}: {err.message}"


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            "social.coves.feed.getCommunity",
            "social.coves.community.comment.getComments",
            "social.coves.community.list",
            "social.coves.community.post.get",
            "social.coves.aggregator.getServices",
        ]
    ),
    st.dictionaries(
        st.sampled_from(
            ["community", "post", "uris", "limit", "sort", "depth", "subscribed", "dids"]
        ),
        st.lists(st.text(max_size=30), max_size=3),
        max_size=5,
    ),
)
def test_arbitrary_query_strings_decode_or_400(
    registry: LexiconRegistry, nsid: str, raw: dict[str, list[str]]
) -> None:
    try:
        registry.decode_params(nsid, raw)
    except XRPCError as err:
        assert (err.status, err.error) == (400, "InvalidRequest")


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            "social.coves.community.post.create",
            "social.coves.community.create",
            "social.coves.community.subscribe",
            "social.coves.aggregator.register",
        ]
    ),
    st.one_of(
        JSON,
        st.dictionaries(
            st.sampled_from(["community", "name", "embed", "facets", "labels", "did", "title"]),
            JSON,
            max_size=4,
        ),
    ),
)
def test_arbitrary_bodies_validate_or_400(registry: LexiconRegistry, nsid: str, body: Any) -> None:
    try:
        registry.validate_input(nsid, body)
    except XRPCError as err:
        assert (err.status, err.error) == (400, "InvalidRequest")
        assert err.message
