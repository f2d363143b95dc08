from __future__ import annotations

from coves.posting.rules import NO_RULES, ContentRules, embed_kind, violation

IMAGES = {"$type": "social.coves.embed.images", "images": []}
LINK = {"$type": "social.coves.embed.external", "external": {"uri": "https://x.test/"}}
QUOTE = {"$type": "social.coves.embed.post#main", "post": {"uri": "at://x", "cid": "y"}}


def test_parsing_rules_from_a_profile() -> None:
    assert ContentRules.from_profile({"name": "x"}) is NO_RULES
    assert ContentRules.from_profile({"contentRules": {"textOnly": False}}) is NO_RULES
    rules = ContentRules.from_profile({"contentRules": {"allowedEmbedTypes": ["images", 3]}})
    assert rules == ContentRules(allowed_embeds=frozenset({"images"}))
    assert rules.to_json() == {"allowedEmbedTypes": ["images"]}
    assert ContentRules.parse({"textOnly": True}).to_json() == {"textOnly": True}
    assert ContentRules.parse("nonsense") is NO_RULES


def test_embed_kinds() -> None:
    assert [embed_kind(e) for e in (None, IMAGES, LINK, QUOTE)] == [
        None,
        "images",
        "external",
        "post",
    ]
    assert embed_kind({"$type": "app.bsky.embed.record"}) == "other"
    assert embed_kind({"no": "type"}) == "other"


def test_violations() -> None:
    text_only = ContentRules(text_only=True)
    assert violation(text_only, None) is None
    for embed in (IMAGES, LINK, QUOTE):
        message = violation(text_only, embed)
        assert message is not None and "text posts only" in message
    links_only = ContentRules(allowed_embeds=frozenset({"external"}))
    assert violation(links_only, LINK) is None
    message = violation(links_only, IMAGES)
    assert message is not None and "images" in message and "external" in message
    nothing = ContentRules(allowed_embeds=frozenset())
    assert violation(nothing, None) is None
    assert "allowed: none" in (violation(nothing, QUOTE) or "")
    assert violation(NO_RULES, IMAGES) is None
