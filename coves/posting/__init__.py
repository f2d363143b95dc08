"""Writing posts through Coves: the checks, the embeds (images, link cards,
quoted posts), the limits, and aggregators. See docs/posting.md."""
