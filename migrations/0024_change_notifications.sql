-- Every server process keeps in memory what each request reads again and again: sessions, the
-- signed-in person with their roles, their unread count, API tokens (src/db/changes.rs). These
-- triggers tell every process when one of those rows changes: `NOTIFY eportfolio_changes` with
-- `kind:key`, sent when the change commits and never if it rolls back, whoever wrote it (a server,
-- a command, psql). A statement that touches more than 100 keys of a kind sends `kind:*` instead,
-- and the processes drop everything they kept of that kind.

CREATE FUNCTION notify_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text := TG_ARGV[0];
    -- The column that names the key, or '*' for a table whose every change concerns all keys.
    key_column text := TG_ARGV[1];
    keys text[];
BEGIN
    IF key_column = '*' THEN
        PERFORM pg_notify('eportfolio_changes', kind || ':*');
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        EXECUTE format('SELECT array_agg(DISTINCT %I::text) FROM changed_new', key_column) INTO keys;
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE format('SELECT array_agg(DISTINCT %I::text) FROM changed_old', key_column) INTO keys;
    ELSE
        EXECUTE format('SELECT array_agg(DISTINCT k) FROM (SELECT %1$I::text AS k FROM changed_old
                        UNION SELECT %1$I::text FROM changed_new) AS both_sides', key_column) INTO keys;
    END IF;
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

-- Sessions: a new one is kept by the process that made it, so only updates and deletions are
-- told. Removing expired sessions tells nobody: a process checks expiry itself.
CREATE FUNCTION notify_session_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('eportfolio_changes', 'session:' || OLD.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER sessions_changed AFTER UPDATE OR DELETE ON sessions
    FOR EACH ROW WHEN (OLD.expires_at > now()) EXECUTE FUNCTION notify_session_changed();

-- The signed-in person: their name, email, disabling, roles and the names of their centres.
CREATE TRIGGER users_updated AFTER UPDATE ON users REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('user', 'id');
CREATE TRIGGER users_deleted AFTER DELETE ON users REFERENCING OLD TABLE AS changed_old
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('user', 'id');
CREATE TRIGGER user_roles_inserted AFTER INSERT ON user_roles REFERENCING NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('user', 'user_id');
CREATE TRIGGER user_roles_updated AFTER UPDATE ON user_roles REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('user', 'user_id');
CREATE TRIGGER user_roles_deleted AFTER DELETE ON user_roles REFERENCING OLD TABLE AS changed_old
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('user', 'user_id');
CREATE TRIGGER centres_changed AFTER UPDATE OR DELETE ON centres
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('user', '*');

-- Unread notifications, counted in every page's header.
CREATE TRIGGER notifications_inserted AFTER INSERT ON notifications REFERENCING NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('unread', 'recipient_id');
CREATE TRIGGER notifications_updated AFTER UPDATE ON notifications REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('unread', 'recipient_id');
CREATE TRIGGER notifications_deleted AFTER DELETE ON notifications REFERENCING OLD TABLE AS changed_old
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('unread', 'recipient_id');

-- API tokens, by their digest: revoking one, or its owner's "last used" time.
CREATE TRIGGER api_tokens_updated AFTER UPDATE ON api_tokens REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('token', 'token_sha256');
CREATE TRIGGER api_tokens_deleted AFTER DELETE ON api_tokens REFERENCING OLD TABLE AS changed_old
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('token', 'token_sha256');
