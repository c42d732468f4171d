-- The first page-token key was derived from random(), which is not a cryptographic source.
-- It goes; the server makes a new one from the system's CSPRNG on its next start
-- (PageTokens.load). Page tokens issued under the old key stop being accepted.
DELETE FROM server_secrets WHERE name = 'page_token_key';
