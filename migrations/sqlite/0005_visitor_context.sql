-- What a visitor's page tells agents (an extension of the visitor API): the
-- name and email the site gave, the page, language, time zone and browser.
-- Keyed by conversation, written from the first authenticate on (before
-- the conversation has a message, hence no foreign key).
CREATE TABLE visitor_contexts (
    conversation_id    TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL,
    name               TEXT,
    email              TEXT,
    url                TEXT,
    title              TEXT,
    referrer           TEXT,
    language           TEXT,
    time_zone          TEXT,
    utc_offset_minutes BIGINT,
    user_agent         TEXT,
    updated_at         BIGINT NOT NULL
);
