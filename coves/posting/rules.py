"""A community's content rules (``contentRules`` in its profile record).

One function decides whether a post's embed is allowed, so post.create,
post.update and the indexer (for posts written into a community's repo by
other means) cannot disagree. Length limits are not here: they are the
post lexicon's, checked wherever a post is validated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Embed $type -> the name contentRules uses for it.
EMBED_KINDS: Mapping[str, str] = {
    "social.coves.embed.images": "images",
    "social.coves.embed.external": "external",
    "social.coves.embed.video": "video",
    "social.coves.embed.post": "post",
}
WITHHELD_REASON = "content_rules"


@dataclass(frozen=True)
class ContentRules:
    text_only: bool = False
    allowed_embeds: frozenset[str] | None = None  # None: every kind

    @property
    def restrictive(self) -> bool:
        return self.text_only or self.allowed_embeds is not None

    @classmethod
    def from_profile(cls, record: Any) -> ContentRules:
        """Rules from a community profile record (anything malformed counts as absent:
        the record was validated against the lexicon before it was stored)."""
        rules = record.get("contentRules") if isinstance(record, Mapping) else None
        return cls.parse(rules)

    @classmethod
    def parse(cls, rules: Any) -> ContentRules:
        if not isinstance(rules, Mapping):
            return NO_RULES
        text_only = rules.get("textOnly") is True
        allowed = rules.get("allowedEmbedTypes")
        kinds = (
            frozenset(k for k in allowed if isinstance(k, str))
            if isinstance(allowed, list)
            else None
        )
        if not text_only and kinds is None:
            return NO_RULES
        return cls(text_only=text_only, allowed_embeds=kinds)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.text_only:
            out["textOnly"] = True
        if self.allowed_embeds is not None:
            out["allowedEmbedTypes"] = sorted(self.allowed_embeds)
        return out


NO_RULES = ContentRules()


def embed_kind(embed: Any) -> str | None:
    """The contentRules name of an embed ("images", ...), "other" for an unknown
    $type, None for no embed."""
    if embed is None:
        return None
    kind = embed.get("$type") if isinstance(embed, Mapping) else None
    if not isinstance(kind, str):
        return "other"
    return EMBED_KINDS.get(kind.removesuffix("#main"), "other")


def violation(rules: ContentRules, embed: Any) -> str | None:
    """Why a post with ``embed`` breaks ``rules``, or None when it does not."""
    if not rules.restrictive:
        return None
    kind = embed_kind(embed)
    if kind is None:
        return None
    if rules.text_only:
        return "this community accepts text posts only (no images, link cards, video or quotes)"
    if rules.allowed_embeds is not None and kind not in rules.allowed_embeds:
        allowed = ", ".join(sorted(rules.allowed_embeds)) or "none"
        return f"this community does not accept {kind} embeds (allowed: {allowed})"
    return None
