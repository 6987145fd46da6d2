-- The conversation on an evidence item: the assessor's overall feedback, the learner's replies
-- and the answers to them. Append-only, like decisions: what was said stays as it was said.
CREATE TABLE evidence_comments (
    id uuid PRIMARY KEY,
    seq bigserial NOT NULL UNIQUE,
    evidence_id uuid NOT NULL REFERENCES evidence_items (id),
    author_id uuid NOT NULL REFERENCES users (id),
    author_role text NOT NULL CHECK (author_role IN ('learner', 'assessor', 'iqa')),
    body text NOT NULL CHECK (length(body) BETWEEN 1 AND 5000),
    written_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX evidence_comments_item ON evidence_comments (evidence_id, seq);
CREATE TRIGGER evidence_comments_append_only BEFORE UPDATE OR DELETE ON evidence_comments
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- In-app notifications, written in the transaction of the event that causes them. Email is
-- sent afterwards by any server's mailer, which claims pending rows (emailed_at IS NULL) with
-- FOR UPDATE SKIP LOCKED and retries failures with a growing delay.
CREATE TABLE notifications (
    id uuid PRIMARY KEY,
    recipient_id uuid NOT NULL REFERENCES users (id),
    kind text NOT NULL CHECK (kind IN ('decisions_recorded', 'comment_added', 'evidence_submitted')),
    subject text NOT NULL,
    link text NOT NULL CHECK (link LIKE '/%'),
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at timestamptz,
    emailed_at timestamptz,
    email_attempts integer NOT NULL DEFAULT 0,
    email_due_at timestamptz NOT NULL DEFAULT now(),
    email_error text
);
CREATE INDEX notifications_recipient ON notifications (recipient_id, created_at DESC);
CREATE INDEX notifications_unread ON notifications (recipient_id) WHERE read_at IS NULL;
CREATE INDEX notifications_email_pending ON notifications (email_due_at) WHERE emailed_at IS NULL;
