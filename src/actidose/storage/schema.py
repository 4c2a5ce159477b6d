"""The DuckDB schema: the SQL contract of docs/sql.md, versioned, with forward migrations.

Tables fall in two groups:

* **recorded** — what was imported: ``participants``, ``sources``, ``hr_samples``,
  ``activities`` (sessions as the files describe them). Written once per source file, in that
  file's transaction.
* **derived** — recomputed per participant from the recorded tables by
  :mod:`actidose.storage.derive`: ``sessions``, ``daily_load``, ``load_series``,
  ``weekly_dose``. Every derived row carries ``params_id`` (see ``parameter_sets``).

``pending_recompute`` lists participants whose derived rows are out of date; it is written in
the same transaction as the data that made them stale, so a crash between an import and its
recompute is healed by the next command that opens the database for writing.
"""

from __future__ import annotations

import duckdb

from ..errors import StorageError

SCHEMA_VERSION = 3

_V1 = """
CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);

CREATE TABLE participants (
    participant_id VARCHAR PRIMARY KEY,
    sex VARCHAR CHECK (sex IN ('f', 'm')),
    birth_year INTEGER CHECK (birth_year BETWEEN 1900 AND 2100),
    timezone VARCHAR NOT NULL,
    arm VARCHAR,
    hr_rest_bpm DOUBLE CHECK (hr_rest_bpm BETWEEN 25 AND 150),
    hr_rest_source VARCHAR,          -- 'entered' or NULL (not known)
    hr_max_bpm DOUBLE CHECK (hr_max_bpm BETWEEN 80 AND 250),
    hr_max_source VARCHAR,           -- 'entered', 'tanaka', 'fox' or NULL
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE SEQUENCE source_id_seq START 1;
CREATE TABLE sources (
    source_id BIGINT PRIMARY KEY DEFAULT nextval('source_id_seq'),
    sha256 VARCHAR NOT NULL UNIQUE,
    path VARCHAR NOT NULL,
    format VARCHAR,
    kind VARCHAR,                    -- 'activity' or 'allday'
    participant_id VARCHAR NOT NULL,
    device VARCHAR,
    serial VARCHAR,
    status VARCHAR NOT NULL CHECK (status IN ('imported', 'salvaged', 'quarantined')),
    reason VARCHAR,
    imported_at TIMESTAMPTZ NOT NULL,
    size_bytes BIGINT,
    n_samples BIGINT,
    n_invalid BIGINT,
    n_duplicate_ts BIGINT,
    utc_offset_s INTEGER,
    first_ts TIMESTAMPTZ,
    last_ts TIMESTAMPTZ,
    warnings VARCHAR,
    actidose_version VARCHAR
);

CREATE TABLE hr_samples (
    participant_id VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    bpm SMALLINT NOT NULL,
    source_id BIGINT NOT NULL
);

CREATE TABLE activities (
    source_id BIGINT NOT NULL,
    idx INTEGER NOT NULL,
    participant_id VARCHAR NOT NULL,
    start_ts TIMESTAMPTZ NOT NULL,
    end_ts TIMESTAMPTZ NOT NULL,
    sport VARCHAR,
    sub_sport VARCHAR,
    timer_s DOUBLE,
    elapsed_s DOUBLE,
    device_hr_mean DOUBLE,
    device_hr_max DOUBLE
);

CREATE TABLE parameter_sets (
    params_id VARCHAR PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL,
    actidose_version VARCHAR,
    params JSON NOT NULL
);

CREATE TABLE pending_recompute (participant_id VARCHAR PRIMARY KEY);

CREATE TABLE sessions (
    session_id BIGINT NOT NULL,
    participant_id VARCHAR NOT NULL,
    source_id BIGINT NOT NULL,
    start_ts TIMESTAMPTZ NOT NULL,
    end_ts TIMESTAMPTZ NOT NULL,
    day DATE NOT NULL,
    sport VARCHAR,
    sub_sport VARCHAR,
    duration_s DOUBLE,
    hr_samples BIGINT,
    hr_coverage_s DOUBLE,
    hr_mean DOUBLE,
    hr_max DOUBLE,
    trimp_banister DOUBLE,
    trimp_edwards DOUBLE,
    hr_mod_min DOUBLE,
    hr_vig_min DOUBLE,
    hr_rest_bpm DOUBLE,
    hr_max_bpm DOUBLE,
    params_id VARCHAR NOT NULL
);

CREATE TABLE daily_load (
    participant_id VARCHAR NOT NULL,
    day DATE NOT NULL,
    sessions INTEGER NOT NULL,
    trimp_banister DOUBLE,
    trimp_edwards DOUBLE,
    trimp_allday DOUBLE,
    hr_minutes DOUBLE,
    hr_mod_min DOUBLE,
    hr_vig_min DOUBLE,
    acc_mod_min DOUBLE,
    acc_vig_min DOUBLE,
    mod_min DOUBLE,
    vig_min DOUBLE,
    mvpa_min DOUBLE,
    wear_min DOUBLE,
    coverage_min DOUBLE,
    day_status VARCHAR NOT NULL CHECK (day_status IN ('observed', 'partial', 'unobserved')),
    hr_rest_bpm DOUBLE,
    hr_max_bpm DOUBLE,
    hr_max_source VARCHAR,
    params_id VARCHAR NOT NULL
);

CREATE TABLE load_series (
    participant_id VARCHAR NOT NULL,
    day DATE NOT NULL,
    load DOUBLE NOT NULL,
    ctl DOUBLE,
    atl DOUBLE,
    tsb DOUBLE,
    acwr_ewma DOUBLE,
    acwr_rolling DOUBLE,
    acwr_uncoupled DOUBLE,
    monotony DOUBLE,
    strain DOUBLE,
    day_status VARCHAR NOT NULL,
    params_id VARCHAR NOT NULL
);

CREATE TABLE weekly_dose (
    participant_id VARCHAR NOT NULL,
    week_start DATE NOT NULL,
    days INTEGER NOT NULL,           -- days of this week inside the participant's data range
    days_observed INTEGER NOT NULL,
    sessions INTEGER NOT NULL,
    session_min DOUBLE,
    trimp_banister DOUBLE,
    trimp_edwards DOUBLE,
    mod_min DOUBLE,
    vig_min DOUBLE,
    who_equiv_min DOUBLE,
    meets_who BOOLEAN,
    params_id VARCHAR NOT NULL
);
"""

# v2: every common export (issue "Import every common export"): RR intervals, vendor activity
# series, the HR sensor kind of a source, the archive a member came from, and the link between
# recordings of one exercise (the session whose samples count in the dose).
_V2 = """
ALTER TABLE sources ADD COLUMN sensor VARCHAR;          -- chest_strap | optical | phone | unknown
ALTER TABLE sources ADD COLUMN archive_sha256 VARCHAR;  -- sha256 of the archive it came from

CREATE TABLE rr_intervals (
    participant_id VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    rr_ms DOUBLE NOT NULL,
    source_id BIGINT NOT NULL
);

CREATE TABLE vendor_activity (
    participant_id VARCHAR NOT NULL,
    source_id BIGINT NOT NULL,
    kind VARCHAR NOT NULL,
    unit VARCHAR,
    start_ts TIMESTAMPTZ NOT NULL,
    duration_s DOUBLE NOT NULL,
    value DOUBLE NOT NULL,
    origin VARCHAR
);

CREATE TABLE accel_epochs (
    participant_id VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,         -- epoch start
    epoch_s DOUBLE NOT NULL,
    enmo_mg DOUBLE,
    mad_mg DOUBLE,
    nonwear BOOLEAN NOT NULL,
    clipped INTEGER NOT NULL,
    n_samples INTEGER NOT NULL,
    source_id BIGINT NOT NULL
);

CREATE TABLE accel_processing (
    source_id BIGINT PRIMARY KEY,
    sample_rate_hz DOUBLE,
    range_g DOUBLE,
    n_samples BIGINT,
    n_epochs BIGINT,
    n_clipped BIGINT,
    calibration_accepted BOOLEAN,
    calibration_error_before_g DOUBLE,
    calibration_error_after_g DOUBLE,
    nonwear_rule VARCHAR,
    info JSON                        -- everything processing reported
);

CREATE TABLE vendor_daily (
    participant_id VARCHAR NOT NULL,
    day DATE NOT NULL,
    kind VARCHAR NOT NULL,
    unit VARCHAR,
    value DOUBLE,
    aggregate VARCHAR NOT NULL,      -- 'sum' or 'mean' over the day's values
    source_id BIGINT NOT NULL,       -- the one source counted for this day and kind
    origin VARCHAR,
    n_sources INTEGER NOT NULL,      -- sources that had this kind that day
    params_id VARCHAR NOT NULL
);

ALTER TABLE daily_load ADD COLUMN acc_light_min DOUBLE;
ALTER TABLE daily_load ADD COLUMN acc_mvpa_min DOUBLE;
ALTER TABLE daily_load ADD COLUMN acc_mvpa_bout1_min DOUBLE;
ALTER TABLE daily_load ADD COLUMN acc_mvpa_bout5_min DOUBLE;
ALTER TABLE daily_load ADD COLUMN acc_mvpa_bout10_min DOUBLE;
ALTER TABLE daily_load ADD COLUMN acc_enmo_mean_mg DOUBLE;
ALTER TABLE daily_load ADD COLUMN valid_wear_day BOOLEAN;
ALTER TABLE weekly_dose ADD COLUMN acc_mvpa_bout10_min DOUBLE;
ALTER TABLE weekly_dose ADD COLUMN valid_wear_days INTEGER;

ALTER TABLE sessions ADD COLUMN duplicate_of BIGINT;
ALTER TABLE sessions ADD COLUMN counted BOOLEAN;
ALTER TABLE sessions ADD COLUMN dose_trimp_banister DOUBLE;
ALTER TABLE sessions ADD COLUMN dose_trimp_edwards DOUBLE;
ALTER TABLE sessions ADD COLUMN dose_hr_mod_min DOUBLE;
ALTER TABLE sessions ADD COLUMN dose_hr_vig_min DOUBLE;
ALTER TABLE sessions ADD COLUMN dose_sources VARCHAR;
"""

# v3: the study layer (issue "symptoms, exposure, adherence, anchors, a Python API"):
# symptom ratings and their instruments, dose in the window before each rating, the arms'
# prescriptions and adherence, versioned HR anchors and their estimates from the data, and how
# load models treated days without data.
_V3 = """
ALTER TABLE participants ADD COLUMN start_date DATE;     -- day 1 of the arm's prescription

CREATE TABLE hr_anchors (                                -- entered anchors, versioned
    participant_id VARCHAR NOT NULL,
    valid_from DATE NOT NULL,                            -- local date the version starts
    hr_rest_bpm DOUBLE CHECK (hr_rest_bpm BETWEEN 25 AND 150),
    hr_max_bpm DOUBLE CHECK (hr_max_bpm BETWEEN 80 AND 250),
    note VARCHAR,
    entered_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (participant_id, valid_from)
);

CREATE TABLE hr_estimates (                              -- derived: anchors from the data
    participant_id VARCHAR NOT NULL,
    day DATE NOT NULL,
    hr_rest_floor_bpm DOUBLE,        -- lowest rolling mean of the day's all-day HR
    hr_rest_est_bpm DOUBLE,          -- smoothed over days (NULL: no estimate near this day)
    hr_hours DOUBLE,                 -- all-day HR coverage of the day
    hr_peak_bpm DOUBLE,              -- highest sustained HR of the day
    hr_max_est_bpm DOUBLE,           -- max(age estimate, highest sustained HR so far)
    params_id VARCHAR NOT NULL
);

CREATE TABLE instruments (
    instrument VARCHAR PRIMARY KEY,
    n_items INTEGER NOT NULL,
    value_min DOUBLE,
    value_max DOUBLE,
    recall_days DOUBLE NOT NULL,
    scoring VARCHAR NOT NULL,
    definition JSON NOT NULL,        -- everything the definition says (bands, thresholds ...)
    origin VARCHAR NOT NULL,         -- 'builtin' or the definitions file
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE SEQUENCE symptom_file_id_seq START 1;
CREATE TABLE symptom_files (
    file_id BIGINT PRIMARY KEY DEFAULT nextval('symptom_file_id_seq'),
    sha256 VARCHAR NOT NULL UNIQUE,
    path VARCHAR NOT NULL,
    layout VARCHAR NOT NULL,         -- 'long' or 'wide'
    instrument VARCHAR,              -- of a wide file
    imported_at TIMESTAMPTZ NOT NULL,
    n_lines BIGINT NOT NULL,         -- data lines read
    n_values BIGINT NOT NULL,        -- item values stored
    n_rejected BIGINT NOT NULL,      -- lines (or cells) rejected
    rejected JSON                    -- [{"line": n, "reason": "..."}]
);

CREATE TABLE symptoms (
    participant_id VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    instrument VARCHAR NOT NULL,
    item INTEGER NOT NULL,           -- numbered from 1
    value DOUBLE NOT NULL,
    utc_offset_s INTEGER,            -- as written, or the participant's zone at ts
    file_id BIGINT NOT NULL,
    line BIGINT NOT NULL,
    PRIMARY KEY (participant_id, instrument, ts, item)
);

CREATE TABLE symptom_scores (                            -- derived: one row per rating
    participant_id VARCHAR NOT NULL,
    instrument VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    day DATE NOT NULL,
    score DOUBLE,
    band VARCHAR,
    n_items INTEGER NOT NULL,
    complete BOOLEAN NOT NULL,
    scoring VARCHAR NOT NULL,
    params_id VARCHAR NOT NULL
);

CREATE TABLE symptom_exposure (                          -- derived: dose before each rating
    participant_id VARCHAR NOT NULL,
    instrument VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    day DATE NOT NULL,
    score DOUBLE,
    lag_days INTEGER NOT NULL,
    window_days DOUBLE NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    window_end TIMESTAMPTZ NOT NULL,                     -- excluded
    trimp_banister DOUBLE,
    trimp_edwards DOUBLE,
    trimp_allday DOUBLE,
    sessions INTEGER NOT NULL,
    mod_min DOUBLE,
    vig_min DOUBLE,
    mvpa_min DOUBLE,
    who_equiv_min DOUBLE,
    ctl_prev DOUBLE,
    atl_prev DOUBLE,
    tsb_prev DOUBLE,
    days_observed DOUBLE,
    days_partial DOUBLE,
    days_unobserved DOUBLE,
    coverage DOUBLE,
    params_id VARCHAR NOT NULL
);

CREATE TABLE symptom_days (                              -- derived: participant x instrument x day
    participant_id VARCHAR NOT NULL,
    instrument VARCHAR NOT NULL,
    day DATE NOT NULL,
    rated BOOLEAN NOT NULL,
    n_ratings INTEGER NOT NULL,
    score DOUBLE,                    -- mean of the day's scores
    day_status VARCHAR NOT NULL,
    sessions INTEGER,
    trimp_banister DOUBLE,
    mvpa_min DOUBLE,
    who_equiv_min DOUBLE,
    ctl DOUBLE,
    atl DOUBLE,
    tsb DOUBLE,
    ctl_prev DOUBLE,
    atl_prev DOUBLE,
    tsb_prev DOUBLE,
    params_id VARCHAR NOT NULL
);

CREATE TABLE prescriptions (
    arm VARCHAR PRIMARY KEY,
    weeks INTEGER NOT NULL,
    sessions_per_week DOUBLE NOT NULL,
    min_session_min DOUBLE,
    band_scheme VARCHAR,             -- 'hrr', 'hrmax' or NULL (any intensity)
    band_low DOUBLE,
    band_high DOUBLE,
    qualify_rule VARCHAR NOT NULL,   -- when a session counts towards the prescription
    trimp_per_week DOUBLE,           -- NULL: from the band (see docs/sql.md)
    definition JSON NOT NULL,
    origin VARCHAR NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE adherence (                                 -- derived: participant x prescribed week
    participant_id VARCHAR NOT NULL,
    arm VARCHAR NOT NULL,
    week INTEGER NOT NULL,           -- 1 = the week starting on start_date
    week_start DATE NOT NULL,
    week_end DATE NOT NULL,          -- included
    days_observed INTEGER NOT NULL,
    sessions_prescribed DOUBLE NOT NULL,
    sessions_done INTEGER NOT NULL,  -- sessions that qualify
    sessions_any INTEGER NOT NULL,   -- every counted session
    band_min DOUBLE,
    band_min_prescribed DOUBLE,
    trimp_banister DOUBLE,
    trimp_prescribed DOUBLE,
    trimp_pct DOUBLE,
    trimp_prescribed_source VARCHAR, -- 'prescribed' (the file), 'band_midpoint' or NULL
    adherence_pct DOUBLE NOT NULL,   -- 100 * min(done / prescribed, 1)
    params_id VARCHAR NOT NULL
);

CREATE TABLE adherence_summary (                         -- derived: participant x prescription
    participant_id VARCHAR NOT NULL,
    arm VARCHAR NOT NULL,
    start_date DATE NOT NULL,
    end_date DATE NOT NULL,
    weeks INTEGER NOT NULL,
    weeks_with_data INTEGER NOT NULL,
    weeks_met INTEGER NOT NULL,
    sessions_prescribed DOUBLE NOT NULL,
    sessions_done INTEGER NOT NULL,
    band_min DOUBLE,
    trimp_banister DOUBLE,
    trimp_prescribed DOUBLE,
    trimp_pct DOUBLE,
    trimp_prescribed_source VARCHAR,
    adherence_pct DOUBLE NOT NULL,
    params_id VARCHAR NOT NULL
);

ALTER TABLE sessions ADD COLUMN hr_rest_source VARCHAR;
ALTER TABLE sessions ADD COLUMN hr_max_source VARCHAR;
ALTER TABLE sessions ADD COLUMN anchor_valid_from DATE;
ALTER TABLE sessions ADD COLUMN band_min DOUBLE;
ALTER TABLE sessions ADD COLUMN qualifies BOOLEAN;
ALTER TABLE daily_load ADD COLUMN hr_rest_source VARCHAR;
ALTER TABLE daily_load ADD COLUMN anchor_valid_from DATE;
ALTER TABLE load_series ALTER COLUMN load DROP NOT NULL;  -- NULL: not known (unobserved day)
ALTER TABLE load_series ADD COLUMN unobserved_treatment VARCHAR;
ALTER TABLE load_series ADD COLUMN imputed BOOLEAN;
ALTER TABLE load_series ADD COLUMN acute_unobserved_days INTEGER;
ALTER TABLE load_series ADD COLUMN chronic_unobserved_days INTEGER;
"""

# Each entry upgrades from version i to i+1 (index 0: empty database -> 1).
MIGRATIONS: list[str] = [_V1, _V2, _V3]

RECORDED_TABLES = (
    "participants",
    "sources",
    "hr_samples",
    "rr_intervals",
    "activities",
    "vendor_activity",
    "accel_epochs",
    "accel_processing",
    "hr_anchors",
    "instruments",
    "symptom_files",
    "symptoms",
    "prescriptions",
)
DERIVED_TABLES = (
    "sessions",
    "daily_load",
    "load_series",
    "weekly_dose",
    "vendor_daily",
    "hr_estimates",
    "symptom_scores",
    "symptom_exposure",
    "symptom_days",
    "adherence",
    "adherence_summary",
)


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
    ).fetchone()
    if not row or row[0] == 0:
        return 0
    got = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(got[0]) if got else 0


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION`, one transaction per step. Returns the
    version found before migrating."""
    found = current_version(con)
    if found > SCHEMA_VERSION:
        raise StorageError(
            f"database schema version {found} is newer than this actidose understands "
            f"({SCHEMA_VERSION}); upgrade actidose"
        )
    for version in range(found, SCHEMA_VERSION):
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(MIGRATIONS[version])
            con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(version + 1)]
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return found
