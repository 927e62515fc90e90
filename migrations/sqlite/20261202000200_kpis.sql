-- Business KPIs beside the pulse (issue 8, item 6): what sponsors judge the program by
-- (sales per rep, complaints, regretted attrition), recorded by program owners per period
-- through the admin API (`PUT /api/v1/programs/{id}/kpis`) or a CSV import
-- (`pulseloop kpi import`). Aggregates owners type in, never answers of members.

-- One KPI of a program. `direction` says which way is better, so a change can be called an
-- improvement or not; `unit` is printed beside values ("EUR", "%", "complaints").
CREATE TABLE kpis (
    program_id  TEXT NOT NULL REFERENCES programs(id),
    kpi_key     TEXT NOT NULL,                 -- stable key, [a-z0-9_], like metric keys
    label       TEXT NOT NULL,
    unit        TEXT NOT NULL,
    direction   TEXT NOT NULL CHECK (direction IN ('higher', 'lower')),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (program_id, kpi_key)
);

-- One value of a KPI for one period. The period is named by its first day, a local date
-- as text ('2027-03-29'): it sorts and compares the same on both databases. A second value
-- for the same period replaces the first (UNIQUE, written with ON CONFLICT DO UPDATE).
CREATE TABLE kpi_values (
    program_id    TEXT NOT NULL,
    kpi_key       TEXT NOT NULL,
    period_start  TEXT NOT NULL,
    value         DOUBLE PRECISION NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (program_id, kpi_key, period_start),
    FOREIGN KEY (program_id, kpi_key) REFERENCES kpis(program_id, kpi_key)
);
