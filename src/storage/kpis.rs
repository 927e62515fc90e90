//! Business KPIs beside the pulse: definitions (label, unit, which direction is better) and
//! one value per period, as owners record them (`PUT …/kpis`, `pulseloop kpi import`).
//!
//! A write is all or nothing: the whole request or file in one transaction, after every row
//! was validated, so a bad line stores nothing. [`parse_kpi_csv`] reads the CSV form and
//! names the line of the first problem. [`Store::kpi_summaries`] gives each KPI's latest value
//! against its baseline, for the digest and the report.
//!
//! KPIs are aggregates owners type in (sales per rep, complaints), not members' answers: the
//! anonymity threshold does not apply to them, and nothing here reads `responses`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{on_pool, on_tx, to_ms, Store, StoreError, StoreResult};
use crate::domain::ids::ProgramId;

/// Which way a KPI should move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher is better (sales per rep).
    Higher,
    /// Lower is better (complaints, regretted attrition).
    Lower,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Higher => "higher",
            Direction::Lower => "lower",
        }
    }

    pub fn parse(s: &str) -> Option<Direction> {
        match s.trim().to_ascii_lowercase().as_str() {
            "higher" => Some(Direction::Higher),
            "lower" => Some(Direction::Lower),
            _ => None,
        }
    }

    /// Whether a change of `delta` is an improvement (`None` for no change).
    pub fn improved(self, delta: f64) -> Option<bool> {
        if delta == 0.0 {
            None
        } else {
            Some((delta > 0.0) == (self == Direction::Higher))
        }
    }
}

/// A KPI's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KpiDefinition {
    pub key: String,
    pub label: String,
    #[serde(default)]
    pub unit: String,
    pub direction: Direction,
}

/// One value of a KPI for the period starting `period_start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KpiValue {
    pub kpi: String,
    pub period_start: NaiveDate,
    pub value: f64,
}

/// What `PUT …/kpis` and a CSV import store: definitions and values, added or replaced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KpiBatch {
    #[serde(default)]
    pub kpis: Vec<KpiDefinition>,
    #[serde(default)]
    pub values: Vec<KpiValue>,
}

/// Limits that keep one request or file reasonable.
pub const MAX_KPIS: usize = 200;
pub const MAX_VALUES: usize = 20_000;
const MAX_KEY: usize = 64;
const MAX_LABEL: usize = 100;
const MAX_UNIT: usize = 20;

/// A problem with a KPI definition or value, in words an owner can act on.
pub fn check_definition(d: &KpiDefinition) -> Result<(), String> {
    let key_ok = !d.key.is_empty()
        && d.key.len() <= MAX_KEY
        && d.key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !key_ok {
        return Err(format!(
            "KPI key '{}' must be 1 to {MAX_KEY} characters of a-z, 0-9 and _",
            d.key
        ));
    }
    let label = d.label.trim();
    if label.is_empty() || label.chars().count() > MAX_LABEL {
        return Err(format!(
            "KPI '{}' needs a label of 1 to {MAX_LABEL} characters",
            d.key
        ));
    }
    if d.unit.chars().count() > MAX_UNIT {
        return Err(format!(
            "KPI '{}': the unit may have at most {MAX_UNIT} characters",
            d.key
        ));
    }
    Ok(())
}

impl KpiBatch {
    /// Every problem that would make the batch store something wrong; `known` are the keys
    /// already stored for the program (a value may refer to one of them).
    pub fn check(&self, known: &[String]) -> Result<(), String> {
        if self.kpis.is_empty() && self.values.is_empty() {
            return Err("nothing to store: give `kpis` and/or `values`".into());
        }
        if self.kpis.len() > MAX_KPIS {
            return Err(format!("at most {MAX_KPIS} KPIs per request"));
        }
        if self.values.len() > MAX_VALUES {
            return Err(format!("at most {MAX_VALUES} values per request"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, d) in self.kpis.iter().enumerate() {
            check_definition(d).map_err(|e| format!("kpis[{i}]: {e}"))?;
            if !seen.insert(d.key.as_str()) {
                return Err(format!("kpis[{i}]: KPI '{}' is defined twice", d.key));
            }
        }
        let mut periods = std::collections::BTreeSet::new();
        for (i, v) in self.values.iter().enumerate() {
            if !seen.contains(v.kpi.as_str()) && !known.contains(&v.kpi) {
                return Err(format!(
                    "values[{i}]: no KPI '{}': define it in `kpis` first",
                    v.kpi
                ));
            }
            if !v.value.is_finite() {
                return Err(format!("values[{i}]: the value must be a finite number"));
            }
            if !periods.insert((v.kpi.as_str(), v.period_start)) {
                return Err(format!(
                    "values[{i}]: a second value for KPI '{}' in the period starting {}",
                    v.kpi, v.period_start
                ));
            }
        }
        Ok(())
    }
}

/// Reads a KPI CSV file: a header line `kpi,label,unit,direction,period_start,value` (any
/// order, any case), then one value per line. A KPI's label, unit and direction must be the
/// same on each of its lines. Blank lines are skipped. The first problem is returned as a
/// sentence naming its line (1 is the header).
pub fn parse_kpi_csv(text: &str) -> Result<KpiBatch, String> {
    const COLUMNS: [&str; 6] = ["kpi", "label", "unit", "direction", "period_start", "value"];
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let Some((_, header)) = lines.next() else {
        return Err("the file is empty: it needs a header line".into());
    };
    let names: Vec<String> = split_csv_line(header)
        .map_err(|e| format!("line 1: {e}"))?
        .into_iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let mut index = [0usize; 6];
    for (slot, column) in index.iter_mut().zip(COLUMNS) {
        *slot = names.iter().position(|n| n == column).ok_or_else(|| {
            format!(
                "line 1: the header has no '{column}' column (expected {})",
                COLUMNS.join(",")
            )
        })?;
    }
    let mut batch = KpiBatch::default();
    for (line, raw) in lines {
        if raw.trim().is_empty() {
            continue;
        }
        let fields = split_csv_line(raw).map_err(|e| format!("line {line}: {e}"))?;
        if fields.len() != names.len() {
            return Err(format!(
                "line {line}: {} fields, but the header has {}",
                fields.len(),
                names.len()
            ));
        }
        let get = |column: usize| fields[index[column]].trim();
        let direction = Direction::parse(get(3)).ok_or_else(|| {
            format!(
                "line {line}: direction must be 'higher' or 'lower', not '{}'",
                get(3)
            )
        })?;
        let definition = KpiDefinition {
            key: get(0).to_string(),
            label: get(1).to_string(),
            unit: get(2).to_string(),
            direction,
        };
        check_definition(&definition).map_err(|e| format!("line {line}: {e}"))?;
        let period_start = NaiveDate::parse_from_str(get(4), "%Y-%m-%d").map_err(|_| {
            format!(
                "line {line}: period_start must be a date like 2027-03-29, not '{}'",
                get(4)
            )
        })?;
        let value = get(5)
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("line {line}: value must be a number, not '{}'", get(5)))?;
        match batch.kpis.iter().find(|d| d.key == definition.key) {
            Some(first) if *first != definition => {
                return Err(format!(
                    "line {line}: KPI '{}' has a different label, unit or direction than on its first line",
                    definition.key
                ))
            }
            Some(_) => {}
            None => batch.kpis.push(definition.clone()),
        }
        if batch
            .values
            .iter()
            .any(|v| v.kpi == definition.key && v.period_start == period_start)
        {
            return Err(format!(
                "line {line}: a second value for KPI '{}' in the period starting {period_start}",
                definition.key
            ));
        }
        batch.values.push(KpiValue {
            kpi: definition.key,
            period_start,
            value,
        });
    }
    if batch.values.is_empty() {
        return Err("the file has a header but no values".into());
    }
    batch.check(&[])?;
    Ok(batch)
}

/// Splits one CSV line: commas separate fields; a field in double quotes may hold commas,
/// and `""` inside it is a quote.
fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.trim().is_empty() && !was_quoted => {
                field.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, '"') => return Err("a quote in the middle of an unquoted field".into()),
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            (false, c) => {
                if was_quoted && !c.is_whitespace() {
                    return Err("text after a closing quote".into());
                }
                field.push(c);
            }
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(field);
    Ok(fields)
}

/// A stored KPI with its values, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredKpi {
    #[serde(flatten)]
    pub definition: KpiDefinition,
    pub values: Vec<PeriodValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PeriodValue {
    pub period_start: NaiveDate,
    pub value: f64,
}

/// A KPI's latest value against its baseline, as the digest shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KpiSummary {
    pub key: String,
    pub label: String,
    pub unit: String,
    pub direction: Direction,
    /// Mean of the values of the KPI's first `baseline_rounds` recorded periods.
    pub baseline: Option<f64>,
    /// How many periods the baseline holds (at most `baseline_rounds`).
    pub baseline_periods: usize,
    /// The most recent value up to the period asked about, if it is past the baseline.
    pub latest: Option<PeriodValue>,
    /// `latest − baseline`.
    pub change: Option<f64>,
    /// Whether the change goes the KPI's better way (`None`: no change or nothing to compare).
    pub improved: Option<bool>,
}

/// The latest value of one KPI against its baseline: the mean of its first `baseline_rounds`
/// periods. Only values of periods starting on or before `up_to` count. While the latest value
/// is itself a baseline period there is nothing to compare yet.
pub fn summarize(kpi: &StoredKpi, baseline_rounds: u32, up_to: NaiveDate) -> KpiSummary {
    let values: Vec<PeriodValue> = kpi
        .values
        .iter()
        .filter(|v| v.period_start <= up_to)
        .copied()
        .collect();
    let n = (baseline_rounds.max(1) as usize).min(values.len());
    let baseline = (n > 0).then(|| values[..n].iter().map(|v| v.value).sum::<f64>() / n as f64);
    let latest = values.get(n..).and_then(|after| after.last()).copied();
    let change = latest.zip(baseline).map(|(l, b)| l.value - b);
    KpiSummary {
        key: kpi.definition.key.clone(),
        label: kpi.definition.label.clone(),
        unit: kpi.definition.unit.clone(),
        direction: kpi.definition.direction,
        baseline,
        baseline_periods: n,
        latest,
        change,
        improved: change.and_then(|c| kpi.definition.direction.improved(c)),
    }
}

#[derive(sqlx::FromRow)]
struct DefinitionRow {
    kpi_key: String,
    label: String,
    unit: String,
    direction: String,
}

#[derive(sqlx::FromRow)]
struct ValueRow {
    kpi_key: String,
    period_start: String,
    value: f64,
}

impl Store {
    /// Whether the program is known to the database (its file was applied).
    pub async fn program_exists(&self, program: &ProgramId) -> StoreResult<bool> {
        let n: i64 = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT COUNT(*) FROM programs WHERE id = $1")
                .bind(program)
                .fetch_one(p)
                .await?
        });
        Ok(n > 0)
    }

    /// The keys of the program's stored KPIs.
    pub async fn kpi_keys(&self, program: &ProgramId) -> StoreResult<Vec<String>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar("SELECT kpi_key FROM kpis WHERE program_id = $1 ORDER BY kpi_key")
                .bind(program)
                .fetch_all(p)
                .await?
        }))
    }

    /// Stores a checked batch in one transaction: definitions and values are added or
    /// replaced; nothing is stored if any write fails. Check it first with
    /// [`KpiBatch::check`].
    pub async fn put_kpis(
        &self,
        program: &ProgramId,
        batch: &KpiBatch,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let known = self.kpi_keys(program).await?;
        batch.check(&known).map_err(StoreError::Conflict)?;
        let now = to_ms(now);
        let mut tx = self.begin().await?;
        for d in &batch.kpis {
            on_tx!(tx, |c| {
                sqlx::query(
                    "INSERT INTO kpis (program_id, kpi_key, label, unit, direction, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $6)
                     ON CONFLICT (program_id, kpi_key) DO UPDATE SET label = excluded.label,
                        unit = excluded.unit, direction = excluded.direction,
                        updated_at = excluded.updated_at",
                )
                .bind(program)
                .bind(&d.key)
                .bind(d.label.trim())
                .bind(d.unit.trim())
                .bind(d.direction.as_str())
                .bind(now)
                .execute(c)
                .await?
                .rows_affected()
            });
        }
        for v in &batch.values {
            on_tx!(tx, |c| {
                sqlx::query(
                    "INSERT INTO kpi_values (program_id, kpi_key, period_start, value, updated_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (program_id, kpi_key, period_start) DO UPDATE SET
                        value = excluded.value, updated_at = excluded.updated_at",
                )
                .bind(program)
                .bind(&v.kpi)
                .bind(v.period_start.to_string())
                .bind(v.value)
                .bind(now)
                .execute(c)
                .await?
                .rows_affected()
            });
        }
        tx.commit().await
    }

    /// The program's KPIs with their values, oldest period first.
    pub async fn kpis(&self, program: &ProgramId) -> StoreResult<Vec<StoredKpi>> {
        let definitions: Vec<DefinitionRow> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT kpi_key, label, unit, direction FROM kpis
                 WHERE program_id = $1 ORDER BY kpi_key",
            )
            .bind(program)
            .fetch_all(p)
            .await?
        });
        let values: Vec<ValueRow> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT kpi_key, period_start, value FROM kpi_values
                 WHERE program_id = $1 ORDER BY kpi_key, period_start",
            )
            .bind(program)
            .fetch_all(p)
            .await?
        });
        definitions
            .into_iter()
            .map(|d| {
                let direction = Direction::parse(&d.direction)
                    .ok_or_else(|| StoreError::Corrupt(format!("KPI direction {}", d.direction)))?;
                let values = values
                    .iter()
                    .filter(|v| v.kpi_key == d.kpi_key)
                    .map(|v| {
                        Ok(PeriodValue {
                            period_start: NaiveDate::parse_from_str(&v.period_start, "%Y-%m-%d")
                                .map_err(|_| {
                                    StoreError::Corrupt(format!("KPI period {}", v.period_start))
                                })?,
                            value: v.value,
                        })
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                Ok(StoredKpi {
                    definition: KpiDefinition {
                        key: d.kpi_key,
                        label: d.label,
                        unit: d.unit,
                        direction,
                    },
                    values,
                })
            })
            .collect()
    }

    /// Each KPI's latest value (periods starting on or before `up_to`) against its baseline
    /// (the mean of its first `baseline_rounds` periods), for the digest.
    pub async fn kpi_summaries(
        &self,
        program: &ProgramId,
        baseline_rounds: u32,
        up_to: NaiveDate,
    ) -> StoreResult<Vec<KpiSummary>> {
        Ok(self
            .kpis(program)
            .await?
            .iter()
            .map(|k| summarize(k, baseline_rounds, up_to))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "kpi,label,unit,direction,period_start,value
sales_per_rep,\"Sales per rep, monthly\",EUR,higher,2027-01-04,1000
sales_per_rep,\"Sales per rep, monthly\",EUR,higher,2027-01-11,1100

complaints,Customer complaints,,lower,2027-01-04,12
";

    #[test]
    fn a_kpi_csv_becomes_definitions_and_values() {
        let batch = parse_kpi_csv(GOOD).unwrap();
        assert_eq!(batch.kpis.len(), 2);
        assert_eq!(batch.kpis[0].label, "Sales per rep, monthly");
        assert_eq!(batch.kpis[1].direction, Direction::Lower);
        assert_eq!(batch.values.len(), 3);
        assert_eq!(batch.values[1].value, 1100.0);
    }

    #[test]
    fn a_bad_csv_line_is_named() {
        let cases = [
            ("kpi,label,unit,direction,period_start\n", "line 1"),
            (
                "kpi,label,unit,direction,period_start,value\nx,X,,higher,2027-01-04,abc\n",
                "line 2: value must be a number",
            ),
            (
                "kpi,label,unit,direction,period_start,value\nx,X,,higher,2027-01-04,1\nx,X,,up,2027-01-11,2\n",
                "line 3: direction",
            ),
            (
                "kpi,label,unit,direction,period_start,value\nx,X,,higher,2027-01-04,1\n\nx,X,,higher,2027-02-30,2\n",
                "line 4: period_start",
            ),
            (
                "kpi,label,unit,direction,period_start,value\nBad Key,X,,higher,2027-01-04,1\n",
                "line 2: KPI key",
            ),
            (
                "kpi,label,unit,direction,period_start,value\nx,X,,higher,2027-01-04,1\nx,Y,,higher,2027-01-11,2\n",
                "line 3: KPI 'x' has a different label",
            ),
            (
                "kpi,label,unit,direction,period_start,value\nx,X,,higher,2027-01-04,1\nx,X,,higher,2027-01-04,2\n",
                "line 3: a second value",
            ),
            (
                "kpi,label,unit,direction,period_start,value\nx,\"X,,higher,2027-01-04,1\n",
                "line 2: a quoted field is not closed",
            ),
            (
                "kpi,label,unit,direction,period_start,value\nx,X,higher,2027-01-04,1\n",
                "line 2: 5 fields",
            ),
        ];
        for (text, expected) in cases {
            let err = parse_kpi_csv(text).unwrap_err();
            assert!(err.starts_with(expected), "{expected:?} in {err:?}");
        }
    }

    fn kpi(direction: Direction, values: &[(u32, f64)]) -> StoredKpi {
        StoredKpi {
            definition: KpiDefinition {
                key: "k".into(),
                label: "K".into(),
                unit: String::new(),
                direction,
            },
            values: values
                .iter()
                .map(|&(day, value)| PeriodValue {
                    period_start: NaiveDate::from_ymd_opt(2027, 1, day).unwrap(),
                    value,
                })
                .collect(),
        }
    }

    #[test]
    fn the_latest_value_is_compared_with_the_mean_of_the_first_periods() {
        let up_to = NaiveDate::from_ymd_opt(2027, 1, 31).unwrap();
        let k = kpi(
            Direction::Lower,
            &[(4, 10.0), (11, 14.0), (18, 13.0), (25, 9.0)],
        );
        let s = summarize(&k, 2, up_to);
        assert_eq!(s.baseline, Some(12.0));
        assert_eq!(s.baseline_periods, 2);
        assert_eq!(s.latest.unwrap().value, 9.0);
        assert_eq!(s.change, Some(-3.0));
        assert_eq!(s.improved, Some(true), "lower is better");

        // Only periods up to the one asked about count.
        let s = summarize(&k, 2, NaiveDate::from_ymd_opt(2027, 1, 20).unwrap());
        assert_eq!(s.latest.unwrap().value, 13.0);
        assert_eq!(s.improved, Some(false));

        // Nothing past the baseline yet: no comparison.
        let s = summarize(&k, 2, NaiveDate::from_ymd_opt(2027, 1, 12).unwrap());
        assert_eq!((s.baseline, s.latest, s.change), (Some(12.0), None, None));
        let s = summarize(&kpi(Direction::Higher, &[]), 2, up_to);
        assert_eq!((s.baseline, s.latest), (None, None));
    }
}
