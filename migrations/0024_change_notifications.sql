-- Every server process keeps in memory what each request reads again and again: sessions, the
-- signed-in person with their roles, their unread count, API tokens (src/db/changes.rs). These
-- triggers tell every process when one of those rows changes: `NOTIFY eportfolio_changes` with
-- `kind:key`, sent when the change commits and never if it rolls back, whoever wrote it (a server,
-- a command, psql). A statement that touches more than 100 keys of a kind sends `kind:*` instead,
-- and the processes drop everything they kept of that kind.

-- TG_ARGV[0] is the kind; TG_ARGV[1] a query naming the keys of the changed rows, with `%1$s`
-- where the transition table goes (`changed_new`, `changed_old`, or both), or '*' for a table
-- whose every change concerns all keys of the kind.
CREATE FUNCTION notify_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text := TG_ARGV[0];
    keys_of text := TG_ARGV[1];
    sides text;
    keys text[];
BEGIN
    IF keys_of = '*' THEN
        PERFORM pg_notify('eportfolio_changes', kind || ':*');
        RETURN NULL;
    END IF;
    sides := CASE TG_OP
        WHEN 'INSERT' THEN format(keys_of, 'changed_new')
        WHEN 'DELETE' THEN format(keys_of, 'changed_old')
        ELSE format(keys_of, 'changed_old') || ' UNION ' || format(keys_of, 'changed_new')
    END;
    EXECUTE 'SELECT array_agg(DISTINCT k::text) FROM (' || sides || ') AS changed(k) WHERE k IS NOT NULL' INTO keys;
    IF keys IS NULL THEN
        RETURN NULL;
    END IF;
    IF cardinality(keys) > 100 THEN
        PERFORM pg_notify('eportfolio_changes', kind || ':*');
    ELSE
        PERFORM pg_notify('eportfolio_changes', kind || ':' || k) FROM unnest(keys) AS k;
    END IF;
    RETURN NULL;
END
$$;

-- A statement trigger on `tbl` for each of `events` (a transition table belongs to one event),
-- notifying `kind` with the keys `keys_of` names.
CREATE FUNCTION notify_changes_of(tbl text, kind text, keys_of text, events text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    event text;
BEGIN
    FOREACH event IN ARRAY events LOOP
        EXECUTE format(
            'CREATE TRIGGER %I AFTER %s ON %I REFERENCING %s FOR EACH STATEMENT
             EXECUTE FUNCTION notify_changed(%L, %L)',
            tbl || '_' || lower(event) || '_' || kind, event, tbl,
            CASE event
                WHEN 'INSERT' THEN 'NEW TABLE AS changed_new'
                WHEN 'DELETE' THEN 'OLD TABLE AS changed_old'
                ELSE 'OLD TABLE AS changed_old NEW TABLE AS changed_new'
            END,
            kind, keys_of);
    END LOOP;
END
$$;

-- Sessions: a new one is kept only once it comes back, so only updates and deletions are told.
-- Removing expired sessions tells nobody: a process checks expiry itself.
CREATE FUNCTION notify_session_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('eportfolio_changes', 'session:' || OLD.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER sessions_changed AFTER UPDATE OR DELETE ON sessions
    FOR EACH ROW WHEN (OLD.expires_at > now()) EXECUTE FUNCTION notify_session_changed();

-- The signed-in person: their name, email, disabling and roles; the names of their centres.
SELECT notify_changes_of('users', 'user', 'SELECT c.id FROM %1$s c', ARRAY['UPDATE', 'DELETE']);
SELECT notify_changes_of('user_roles', 'user', 'SELECT c.user_id FROM %1$s c', ARRAY['INSERT', 'UPDATE', 'DELETE']);
CREATE TRIGGER centres_changed AFTER UPDATE OR DELETE ON centres
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('user', '*');
-- Unread notifications, counted in every page's header.
SELECT notify_changes_of('notifications', 'unread', 'SELECT c.recipient_id FROM %1$s c', ARRAY['INSERT', 'UPDATE', 'DELETE']);
-- API tokens, by their digest: revoking one, or its owner's "last used" time.
SELECT notify_changes_of('api_tokens', 'token', 'SELECT c.token_sha256 FROM %1$s c', ARRAY['UPDATE', 'DELETE']);
