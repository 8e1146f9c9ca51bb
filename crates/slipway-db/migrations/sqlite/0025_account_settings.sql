-- Account settings (issue 18). What a browser session was opened from, for its account's
-- sessions list: the browser's User-Agent (at most 200 characters) and the client address
-- (IPv6 by /64); empty for sessions older than this.
ALTER TABLE web_sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
ALTER TABLE web_sessions ADD COLUMN client TEXT NOT NULL DEFAULT '';

-- The address an email change waits to verify (purpose 'change-email'): the account's
-- email becomes it when the link mailed there is followed.
ALTER TABLE email_tokens ADD COLUMN new_email TEXT;
