-- The client key a sign-in started with: authorization servers bind a session to
-- the key of its client assertions, so its refreshes must be signed with the same
-- one (OAUTH_CLIENT_OLD_KEYS keeps earlier keys usable). NULL: the current key, or
-- a public (loopback) client that signs nothing.
ALTER TABLE oauth_requests ADD COLUMN client_kid text;
ALTER TABLE oauth_sessions ADD COLUMN client_kid text;
