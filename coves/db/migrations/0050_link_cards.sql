-- Link cards fetched for posts' external embeds (coves/unfurl), shared by every
-- process. A NULL card is a negative entry: the page could not be described,
-- kept briefly so a broken link is not refetched by every post that names it.
CREATE TABLE link_cards (
    url        text PRIMARY KEY,          -- normalised (coves.unfurl.providers.normalize_url)
    provider   text NOT NULL,
    card       jsonb,                     -- {title, description, image, embedType}
    error      text,
    fetched_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX link_cards_expires ON link_cards (expires_at);
