"""The SQLite schema, as an ordered list of migrations.

``PRAGMA user_version`` records how many have run. A migration is appended, never edited: a
database made by an older release is brought forward on open, and one made by a newer release
is refused rather than misread.

Times are integers, microseconds since the epoch in UTC, so that ranges compare as numbers.
Every index costs each ingested flow a b-tree insert, and the ones on addresses and ports land
at random places: only what the API filters on is indexed (no source-port index: in a
bidirectional flow the initiator is the source, so the service port is ``destination.port``).
IP addresses are stored in Python's canonical text form (``ipaddress``), so that an equality
filter matches however the sensor wrote the address.
"""

from __future__ import annotations

from typing import Final

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: principals, sensors, flows, scans.
    """
    CREATE TABLE sensors (
        sensor_id        TEXT PRIMARY KEY,
        created_us       INTEGER NOT NULL,
        last_seen_us     INTEGER,
        records_received INTEGER NOT NULL DEFAULT 0,
        batches_received INTEGER NOT NULL DEFAULT 0,
        version          TEXT,
        counters         TEXT NOT NULL DEFAULT '{}',
        last_heartbeat_us INTEGER
    ) STRICT;

    CREATE TABLE principals (
        id          INTEGER PRIMARY KEY,
        key_id      TEXT NOT NULL UNIQUE,
        secret_hash BLOB NOT NULL,
        name        TEXT NOT NULL,
        role        TEXT NOT NULL CHECK (role IN ('sensor', 'analyst', 'admin')),
        sensor_id   TEXT REFERENCES sensors (sensor_id),
        created_us  INTEGER NOT NULL,
        revoked_us  INTEGER,
        CHECK ((role = 'sensor') = (sensor_id IS NOT NULL))
    ) STRICT;

    CREATE TABLE flows (
        seq         INTEGER PRIMARY KEY,
        sensor_id   TEXT NOT NULL,
        event_id    TEXT NOT NULL,
        start_us    INTEGER NOT NULL,
        end_us      INTEGER NOT NULL,
        src_ip      TEXT NOT NULL,
        src_port    INTEGER,
        dst_ip      TEXT NOT NULL,
        dst_port    INTEGER,
        transport   TEXT NOT NULL,
        received_us INTEGER NOT NULL,
        doc         BLOB NOT NULL,
        UNIQUE (sensor_id, event_id)
    ) STRICT;
    CREATE INDEX flows_by_start ON flows (start_us, seq);
    CREATE INDEX flows_by_src_ip ON flows (src_ip, start_us);
    CREATE INDEX flows_by_dst_ip ON flows (dst_ip, start_us);
    CREATE INDEX flows_by_dst_port ON flows (dst_port, start_us);
    CREATE INDEX flows_by_sensor ON flows (sensor_id, start_us);

    CREATE TABLE scans (
        seq         INTEGER PRIMARY KEY,
        sensor_id   TEXT NOT NULL,
        event_id    TEXT NOT NULL,
        target      TEXT NOT NULL,
        start_us    INTEGER NOT NULL,
        end_us      INTEGER NOT NULL,
        received_us INTEGER NOT NULL,
        doc         BLOB NOT NULL,
        UNIQUE (sensor_id, event_id)
    ) STRICT;
    CREATE INDEX scans_by_target ON scans (target, start_us);
    """,
    # 2: alerts, deduplicated by (source, entity) while open.
    """
    CREATE TABLE alerts (
        id            TEXT PRIMARY KEY,
        source        TEXT NOT NULL,
        rule_id       TEXT NOT NULL,
        title         TEXT NOT NULL,
        severity      TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
        entity        TEXT NOT NULL,
        status        TEXT NOT NULL DEFAULT 'new',
        first_seen_us INTEGER NOT NULL,
        last_seen_us  INTEGER NOT NULL,
        count         INTEGER NOT NULL,
        tags          TEXT NOT NULL,
        evidence      TEXT NOT NULL,
        created_us    INTEGER NOT NULL,
        updated_us    INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX alerts_by_key ON alerts (source, entity, last_seen_us);
    CREATE INDEX alerts_by_time ON alerts (last_seen_us);
    CREATE INDEX alerts_by_status ON alerts (status, last_seen_us);
    """,
    # 3: the alert lifecycle (assignee, append-only notes, audit trail) and the information
    # systems whose declared security level raises the severity of alerts about them.
    """
    ALTER TABLE alerts ADD COLUMN assignee TEXT;
    ALTER TABLE alerts ADD COLUMN system_id TEXT;

    CREATE TABLE alert_notes (
        id          INTEGER PRIMARY KEY,
        alert_id    TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
        author_id   INTEGER NOT NULL,
        author      TEXT NOT NULL,
        created_us  INTEGER NOT NULL,
        text        TEXT NOT NULL
    ) STRICT;
    CREATE INDEX alert_notes_by_alert ON alert_notes (alert_id, id);

    CREATE TABLE alert_audit (
        seq         INTEGER PRIMARY KEY,
        alert_id    TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
        at_us       INTEGER NOT NULL,
        actor_id    INTEGER NOT NULL,
        actor       TEXT NOT NULL,
        field       TEXT NOT NULL CHECK (field IN ('status', 'assignee', 'note')),
        old         TEXT,
        new         TEXT
    ) STRICT;
    CREATE INDEX alert_audit_by_alert ON alert_audit (alert_id, seq);

    CREATE TABLE information_systems (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        agency      TEXT NOT NULL,
        level       INTEGER NOT NULL CHECK (level BETWEEN 1 AND 5),
        networks    TEXT NOT NULL,
        hosts       TEXT NOT NULL,
        created_us  INTEGER NOT NULL
    ) STRICT;
    """,
    # 4: delivery to the coordination centre (the outbox: notifications, the alerts each
    # carries, every attempt) and noise control (silences, suppressions, muted alerts).
    """
    ALTER TABLE alerts ADD COLUMN muted_by TEXT;

    CREATE TABLE notifications (
        id              TEXT PRIMARY KEY,
        receiver        TEXT NOT NULL,
        group_key       TEXT NOT NULL,
        state           TEXT NOT NULL
                        CHECK (state IN ('pending', 'sending', 'delivered', 'dead', 'muted')),
        sealed          INTEGER NOT NULL DEFAULT 0,
        window_start_us INTEGER NOT NULL,
        created_us      INTEGER NOT NULL,
        not_before_us   INTEGER NOT NULL,
        deadline_us     INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        payload         BLOB,
        delivered_us    INTEGER,
        last_error      TEXT
    ) STRICT;
    CREATE INDEX notifications_due ON notifications (state, not_before_us);
    CREATE INDEX notifications_by_group ON notifications (receiver, group_key, window_start_us);
    CREATE INDEX notifications_open_by_group ON notifications (receiver, group_key, window_start_us)
        WHERE sealed = 0 AND state = 'pending';
    CREATE INDEX notifications_by_time ON notifications (created_us, id);

    CREATE TABLE notification_alerts (
        notification_id TEXT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
        alert_id        TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
        receiver        TEXT NOT NULL,
        PRIMARY KEY (notification_id, alert_id),
        UNIQUE (alert_id, receiver)
    ) STRICT;

    CREATE TABLE delivery_attempts (
        seq             INTEGER PRIMARY KEY,
        notification_id TEXT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
        at_us           INTEGER NOT NULL,
        duration_us     INTEGER NOT NULL,
        outcome         TEXT NOT NULL,
        status          INTEGER,
        error           TEXT
    ) STRICT;
    CREATE INDEX delivery_attempts_by_notification ON delivery_attempts (notification_id, seq);

    CREATE TABLE silences (
        id          TEXT PRIMARY KEY,
        matchers    TEXT NOT NULL,
        starts_us   INTEGER NOT NULL,
        ends_us     INTEGER NOT NULL,
        author_id   INTEGER NOT NULL,
        author      TEXT NOT NULL,
        comment     TEXT NOT NULL,
        created_us  INTEGER NOT NULL,
        expired_by  TEXT
    ) STRICT;
    CREATE INDEX silences_by_end ON silences (ends_us);

    CREATE TABLE suppressions (
        id          TEXT PRIMARY KEY,
        source      TEXT NOT NULL,
        entity      TEXT NOT NULL,
        match_values TEXT NOT NULL,
        alert_id    TEXT NOT NULL,
        author_id   INTEGER NOT NULL,
        author      TEXT NOT NULL,
        created_us  INTEGER NOT NULL,
        expires_us  INTEGER NOT NULL,
        hits        INTEGER NOT NULL DEFAULT 0,
        last_hit_us INTEGER
    ) STRICT;
    CREATE INDEX suppressions_by_key ON suppressions (source, entity, expires_us);
    CREATE INDEX suppressions_by_alert ON suppressions (alert_id);
    """,
    # 5: trust ratings: providers and their sites, incidents, finding states, ratings.
    """
    CREATE TABLE providers (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        agency      TEXT NOT NULL,
        level       INTEGER NOT NULL,
        created_us  INTEGER NOT NULL,
        updated_us  INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE provider_sites (
        domain      TEXT PRIMARY KEY,
        provider_id TEXT NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
        role        TEXT NOT NULL,
        position    INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX provider_sites_by_provider ON provider_sites (provider_id, position);

    CREATE TABLE incidents (
        id          TEXT PRIMARY KEY,
        provider_id TEXT NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
        kind        TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('active', 'resolved', 'dismissed')),
        site        TEXT,
        started_us  INTEGER NOT NULL,
        resolved_us INTEGER,
        summary     TEXT NOT NULL,
        alert_id    TEXT UNIQUE,
        author      TEXT NOT NULL,
        created_us  INTEGER NOT NULL,
        updated_us  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX incidents_by_provider ON incidents (provider_id, started_us);

    -- One row per (site, check): the confirmation state scoring keeps (principle 6).
    CREATE TABLE findings (
        domain      TEXT NOT NULL,
        check_id    TEXT NOT NULL,
        doc         BLOB NOT NULL,
        PRIMARY KEY (domain, check_id)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE ratings (
        provider_id TEXT PRIMARY KEY REFERENCES providers (id) ON DELETE CASCADE,
        status      TEXT NOT NULL,
        grade       TEXT NOT NULL,
        score       REAL,
        warning     INTEGER NOT NULL,
        computed_us INTEGER NOT NULL,
        doc         BLOB NOT NULL
    ) STRICT;

    CREATE TABLE rating_history (
        seq         INTEGER PRIMARY KEY,
        provider_id TEXT NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
        at_us       INTEGER NOT NULL,
        status      TEXT NOT NULL,
        grade       TEXT NOT NULL,
        score       REAL
    ) STRICT;
    CREATE INDEX rating_history_by_provider ON rating_history (provider_id, at_us);
    CREATE INDEX rating_history_by_time ON rating_history (at_us);

    -- Alerts about a provider's sites count in its rating until confirmed or dismissed.
    CREATE INDEX alerts_by_entity ON alerts (entity);
    """,
)
