-- The SMS and push simulators' record (one row per idempotency key), and the mail the sandbox
-- SMTP server received.
CREATE TABLE sandbox.messages (
    id text PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    channel text NOT NULL CHECK (channel IN ('sms', 'push')),
    recipient text NOT NULL,
    title text,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_recipient ON sandbox.messages (recipient, created_at);

CREATE TABLE sandbox.emails (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mail_from text NOT NULL,
    rcpt_to text[] NOT NULL,
    message text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX emails_rcpt ON sandbox.emails USING gin (rcpt_to);
