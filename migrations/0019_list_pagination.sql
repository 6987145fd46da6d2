-- Keyset pages of the API's lists (GET /api/v1/users): a centre's people by name, then id.
CREATE INDEX users_by_name ON users (lower(name), id);
CREATE INDEX user_roles_by_centre ON user_roles (centre_id, user_id);
