"""The byte and grapheme fast paths agree with the slow, obviously-correct measures."""

from __future__ import annotations

import grapheme
from hypothesis import given, settings
from hypothesis import strategies as st

from coves.lexicon.text import bytes_within, grapheme_length, graphemes_within, utf8_length

TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(["a", "\r", "\n", "\u0301", "\u200d", "👩", "🏽", "é", "\u0915", "\u094d"]),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_grapheme_length_matches_library(value: str) -> None:
    assert grapheme_length(value) == grapheme.length(value)
    assert utf8_length(value) == len(value.encode("utf-8"))


@settings(max_examples=300, deadline=None)
@given(TEXT, st.integers(0, 50), st.integers(0, 50))
def test_limits_match_direct_measures(value: str, low: int, high: int) -> None:
    size = len(value.encode("utf-8"))
    count = grapheme.length(value)
    assert (bytes_within(value, low, high) is None) == (low <= size <= high)
    assert (graphemes_within(value, low, high) is None) == (low <= count <= high)
    assert (bytes_within(value, None, high) is None) == (size <= high)
    assert (graphemes_within(value, low, None) is None) == (low <= count)


def test_ascii_crlf_is_one_cluster() -> None:
    assert grapheme_length("a\r\nb") == 3
    assert grapheme_length("\n\r") == 2
    assert graphemes_within("\r\n" * 3, None, 3) is None
    assert graphemes_within("\r\n" * 3 + "x", None, 3) is not None


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
        st.from_regex(
            r"\A[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{1,12})?"
            r"(Z|[+-][0-2][0-9]:[0-5][0-9])\Z"
        ),
        st.text(max_size=30),
    )
)
def test_datetime_format_agrees_with_syntax(value: str) -> None:
    from coves.atproto.syntax import parse_datetime
    from coves.lexicon.formats import FORMATS

    assert (FORMATS["datetime"](value) is None) == (parse_datetime(value) is not None)


@settings(max_examples=500, deadline=None)
@given(TEXT)
def test_grapheme_bounds_contain_the_count(value: str) -> None:
    from coves.lexicon.text import grapheme_bounds

    low, high = grapheme_bounds(value)
    assert low <= grapheme.length(value) <= high


def test_bounds_settle_combining_floods_cheaply() -> None:
    from coves.lexicon.text import grapheme_bounds

    assert grapheme_bounds("e\u0301" * 20000) == (20000, 40000)
    assert grapheme_bounds("日本語") == (3, 3)
    assert graphemes_within("e\u0301" * 20000, None, 10000) is not None
    assert graphemes_within("e\u0301" * 10000, None, 10000) is None
    assert graphemes_within("e\u0301" * 3, 3, None) is None
    assert graphemes_within("e\u0301" * 2, 3, None) is not None


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.from_regex(
            r"\Aat://(did:[a-z]{1,4}:[a-zA-Z0-9._:%-]{0,12}|[a-z]{1,5}\.[a-z]{2,3})"
            r"(/[a-zA-Z0-9.-]{1,15}(/[A-Za-z0-9.\-_:~?#]{1,8})?)?/?\Z"
        ),
        st.text(max_size=40).map(lambda t: "at://" + t),
    )
)
def test_at_uri_fast_path_agrees_with_parser(value: str) -> None:
    from coves.atproto.syntax import AtUri
    from coves.lexicon.formats import FORMATS, clear_caches

    clear_caches()
    try:
        AtUri.parse(value)
        expected = True
    except ValueError:
        expected = False
    assert (FORMATS["at-uri"](value) is None) == expected


def _class_representatives() -> list[str]:
    from coves.lexicon.text import CLASS_TABLE

    assert CLASS_TABLE is not None
    found: dict[str, list[str]] = {}
    for point in range(0x30000):
        chosen = found.setdefault(CLASS_TABLE[point], [])
        if len(chosen) < 3:
            chosen.append(chr(point))
    assert set(found) == set("prncesiLVTvtzxo")
    return [char for chars in found.values() for char in chars]


REPRESENTATIVES = _class_representatives()


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(REPRESENTATIVES), max_size=16).map("".join))
def test_cluster_regex_matches_the_grapheme_package(value: str) -> None:
    from coves.lexicon.text import count_clusters

    assert count_clusters(value) == grapheme.length(value)


def test_cluster_regex_known_sequences() -> None:
    from coves.lexicon.text import count_clusters

    assert count_clusters("👨\u200d👩\u200d👧\u200d👦") == 1
    assert count_clusters("🇧🇷🇵🇹🇩") == 3  # two flags and a lone indicator
    assert count_clusters("\u1100\u1161\u11a8") == 1  # L V T
    assert count_clusters("\u0915\u094d\u0937") == grapheme.length("\u0915\u094d\u0937")
    assert count_clusters("a\r\n\u0301") == 3
    assert count_clusters("") == 0


def test_long_joining_texts_agree_with_the_package() -> None:
    from coves.lexicon.text import count_clusters

    for text in ("\u1100\uac00" * 3000, "e\u0301" * 3000, "👩\u200d💻" * 3000):
        assert count_clusters(text) == grapheme.length(text)
        assert (graphemes_within(text, None, 2999) is None) == (grapheme.length(text) <= 2999)
