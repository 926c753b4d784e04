-- Which provider made each response the gateway answered on /v1/responses, and for whom, so
-- GET/DELETE/cancel/input_items reach that provider and only that caller. A bridged response
-- stored with `store: true` keeps its JSON in `body` (the response object and the conversation
-- input that led to it) until `expires_at`; times are epoch ms.
CREATE TABLE responses (
    id         TEXT    PRIMARY KEY NOT NULL,
    provider   TEXT    NOT NULL,
    caller     TEXT,
    bridged    BOOLEAN NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT,
    body       TEXT
);
CREATE INDEX responses_expires_at ON responses (expires_at);
