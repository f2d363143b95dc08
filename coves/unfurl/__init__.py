"""Link cards: what a post linking to a web page shows without the client
having described the page itself (title, description, thumbnail).

``providers`` decides how a URL is described (oEmbed for the providers the
original AppView supported, OpenGraph for everything else, a Bluesky post
link becoming a quoted post), ``opengraph`` and ``oembed`` parse what the
site returns, and ``service`` fetches it through the safe fetcher within a
deadline, behind one circuit breaker per provider, caching results in the
database. See docs/posting.md.
"""
