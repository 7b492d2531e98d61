CREATE SCHEMA IF NOT EXISTS notifications;

-- One row per message to a consumer on one channel. The recipient (email address, phone) is
-- looked up from identity when it is sent, never copied here.
CREATE TABLE notifications.notifications (
    id text PRIMARY KEY,
    consumer_id text NOT NULL,
    channel text NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    template text NOT NULL,
    subject text NOT NULL,
    body text NOT NULL,
    -- What caused it (an event id, or a reminder's plan and installment): a cause makes a
    -- template on a channel once.
    cause text NOT NULL,
    status text NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    provider_reference text,
    error text,
    created_at timestamptz NOT NULL,
    sent_at timestamptz,
    UNIQUE (cause, template, channel),
    CHECK ((status = 'queued') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX notifications_consumer ON notifications.notifications (consumer_id, id);
CREATE INDEX notifications_due ON notifications.notifications (next_attempt_at)
    WHERE status = 'queued';

-- A reminder 3 days before each scheduled installment's due date, kept from the plan's events;
-- due work sends the due ones in batches (never a timer per installment).
CREATE TABLE notifications.reminders (
    plan_id text NOT NULL,
    seq integer NOT NULL,
    consumer_id text NOT NULL,
    due_date date NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    currency text NOT NULL,
    remind_at timestamptz NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'sent', 'canceled')),
    PRIMARY KEY (plan_id, seq)
);
CREATE INDEX reminders_due ON notifications.reminders (remind_at) WHERE status = 'pending';
