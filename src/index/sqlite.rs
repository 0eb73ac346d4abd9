//! [`SqliteIndex`]: the embedded index, SQLite in WAL mode (one writer, concurrent readers),
//! `synchronous=FULL` so that a published batch is durable when `publish` returns.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::attrs::{Attr, Level, ATTRS};
use super::normalize::{fold_name, pad_time};
use super::query::{Matcher, Query, QueryResult, ResultRow};
use super::{Index, IndexError, InstanceRecord, MetadataRow, Scope, StoredInstance};

/// File name of the index database under the storage root.
pub const DATABASE_FILE: &str = "index.sqlite";
/// Read connections kept open between queries.
const MAX_IDLE_READERS: usize = 8;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS studies (
    study_uid TEXT PRIMARY KEY,
    study_date TEXT, study_time TEXT, study_time_norm TEXT, accession_number TEXT,
    referring_physician_name TEXT, referring_physician_name_norm TEXT,
    study_description TEXT, patient_name TEXT, patient_name_norm TEXT, patient_id TEXT,
    patient_birth_date TEXT, patient_sex TEXT, study_id TEXT,
    modalities TEXT, n_series INTEGER NOT NULL DEFAULT 0, n_instances INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS studies_patient_id ON studies(patient_id);
CREATE INDEX IF NOT EXISTS studies_date ON studies(study_date);
CREATE INDEX IF NOT EXISTS studies_accession ON studies(accession_number);
CREATE INDEX IF NOT EXISTS studies_name ON studies(patient_name_norm);
CREATE TABLE IF NOT EXISTS series (
    series_uid TEXT PRIMARY KEY, study_uid TEXT NOT NULL,
    modality TEXT, series_date TEXT, series_time TEXT, series_time_norm TEXT,
    series_description TEXT, body_part TEXT, series_number TEXT, pps_start_date TEXT,
    n_instances INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS series_study ON series(study_uid);
CREATE INDEX IF NOT EXISTS series_modality ON series(modality);
CREATE TABLE IF NOT EXISTS instances (
    sop_uid TEXT PRIMARY KEY, series_uid TEXT NOT NULL, study_uid TEXT NOT NULL,
    sop_class_uid TEXT, instance_number TEXT, rows TEXT, columns TEXT,
    number_of_frames TEXT, transfer_syntax TEXT,
    path TEXT NOT NULL, size INTEGER NOT NULL, metadata_json TEXT NOT NULL,
    layout_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_series ON instances(series_uid);
CREATE INDEX IF NOT EXISTS instances_study ON instances(study_uid);
CREATE INDEX IF NOT EXISTS instances_study_order
    ON instances(study_uid, CAST(instance_number AS INTEGER), sop_uid);
CREATE INDEX IF NOT EXISTS instances_series_order
    ON instances(series_uid, CAST(instance_number AS INTEGER), sop_uid);
CREATE TABLE IF NOT EXISTS pending (batch INTEGER NOT NULL, sop_uid TEXT NOT NULL, path TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS pending_batch ON pending(batch);
";

fn err(error: impl std::fmt::Display) -> IndexError {
    IndexError(error.to_string())
}

/// The embedded SQLite index.
pub struct SqliteIndex {
    path: std::path::PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn open_connection(path: &Path) -> Result<Connection, IndexError> {
    let connection = Connection::open(path).map_err(err)?;
    connection
        .execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=30000;",
        )
        .map_err(err)?;
    Ok(connection)
}

/// Table alias of a level in the query joins.
fn alias(level: Level) -> &'static str {
    match level {
        Level::Study => "s",
        Level::Series => "se",
        Level::Instance => "i",
    }
}

impl SqliteIndex {
    /// Opens (creating) the index in `root`.
    pub fn open(root: &Path) -> Result<SqliteIndex, IndexError> {
        SqliteIndex::open_file(&root.join(DATABASE_FILE))
    }

    /// Opens (creating) the index database at `path`.
    pub fn open_file(path: &Path) -> Result<SqliteIndex, IndexError> {
        let path = path.to_path_buf();
        let writer = open_connection(&path)?;
        writer.execute_batch(SCHEMA).map_err(err)?;
        Ok(SqliteIndex {
            path,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` with a read connection from the pool.
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        let connection = match lock(&self.readers).pop() {
            Some(connection) => connection,
            None => open_connection(&self.path)?,
        };
        let result = f(&connection);
        let mut readers = lock(&self.readers);
        if readers.len() < MAX_IDLE_READERS {
            readers.push(connection);
        }
        result
    }
}

fn value_of<'r>(record: &'r InstanceRecord, column: &str) -> Option<&'r str> {
    ATTRS
        .iter()
        .find(|attr| attr.column == column && !attr.computed)
        .and_then(|attr| record.value(attr))
}

fn upsert(tx: &rusqlite::Transaction<'_>, record: &InstanceRecord) -> rusqlite::Result<()> {
    let v = |column: &str| value_of(record, column);
    tx.prepare_cached(
        "INSERT INTO studies (study_uid, study_date, study_time, study_time_norm, accession_number,
            referring_physician_name, referring_physician_name_norm, study_description,
            patient_name, patient_name_norm, patient_id, patient_birth_date, patient_sex, study_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT(study_uid) DO UPDATE SET
            study_date = excluded.study_date, study_time = excluded.study_time,
            study_time_norm = excluded.study_time_norm, accession_number = excluded.accession_number,
            referring_physician_name = excluded.referring_physician_name,
            referring_physician_name_norm = excluded.referring_physician_name_norm,
            study_description = excluded.study_description, patient_name = excluded.patient_name,
            patient_name_norm = excluded.patient_name_norm, patient_id = excluded.patient_id,
            patient_birth_date = excluded.patient_birth_date, patient_sex = excluded.patient_sex,
            study_id = excluded.study_id",
    )?
    .execute(params![
            record.study_uid,
            v("study_date"),
            v("study_time"),
            v("study_time").map(pad_time),
            v("accession_number"),
            v("referring_physician_name"),
            v("referring_physician_name").map(fold_name),
            v("study_description"),
            v("patient_name"),
            v("patient_name").map(fold_name),
            v("patient_id"),
            v("patient_birth_date"),
            v("patient_sex"),
            v("study_id"),
        ])?;
    tx.prepare_cached(
        "INSERT INTO series (series_uid, study_uid, modality, series_date, series_time,
            series_time_norm, series_description, body_part, series_number, pps_start_date)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT(series_uid) DO UPDATE SET
            modality = excluded.modality, series_date = excluded.series_date,
            series_time = excluded.series_time, series_time_norm = excluded.series_time_norm,
            series_description = excluded.series_description, body_part = excluded.body_part,
            series_number = excluded.series_number, pps_start_date = excluded.pps_start_date",
    )?
    .execute(params![
        record.series_uid,
        record.study_uid,
        v("modality"),
        v("series_date"),
        v("series_time"),
        v("series_time").map(pad_time),
        v("series_description"),
        v("body_part"),
        v("series_number"),
        v("pps_start_date"),
    ])?;
    tx.prepare_cached(
        "INSERT INTO instances (sop_uid, series_uid, study_uid, sop_class_uid, instance_number,
            rows, columns, number_of_frames, transfer_syntax, path, size, metadata_json, layout_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT(sop_uid) DO UPDATE SET
            series_uid = excluded.series_uid, study_uid = excluded.study_uid,
            sop_class_uid = excluded.sop_class_uid, instance_number = excluded.instance_number,
            rows = excluded.rows, columns = excluded.columns,
            number_of_frames = excluded.number_of_frames, transfer_syntax = excluded.transfer_syntax,
            path = excluded.path, size = excluded.size, metadata_json = excluded.metadata_json,
            layout_json = excluded.layout_json",
    )?
    .execute(params![
            record.sop_uid,
            record.series_uid,
            record.study_uid,
            record.sop_class_uid,
            v("instance_number"),
            v("rows"),
            v("columns"),
            v("number_of_frames"),
            record.transfer_syntax,
            record.path,
            record.size as i64,
            record.metadata_json,
            record.layout_json,
        ])?;
    Ok(())
}

/// Recomputes the counts and ModalitiesInStudy of the studies and series touched.
fn refresh_counts(
    tx: &rusqlite::Transaction<'_>,
    records: &[InstanceRecord],
) -> rusqlite::Result<()> {
    let mut series: Vec<&str> = records.iter().map(|r| r.series_uid.as_str()).collect();
    series.sort_unstable();
    series.dedup();
    for uid in series {
        tx.execute(
            "UPDATE series SET n_instances = (SELECT count(*) FROM instances WHERE series_uid = ?1)
             WHERE series_uid = ?1",
            params![uid],
        )?;
    }
    let mut studies: Vec<&str> = records.iter().map(|r| r.study_uid.as_str()).collect();
    studies.sort_unstable();
    studies.dedup();
    for uid in studies {
        tx.execute(
            "UPDATE studies SET
                n_series = (SELECT count(*) FROM series WHERE study_uid = ?1),
                n_instances = (SELECT count(*) FROM instances WHERE study_uid = ?1),
                modalities = (SELECT group_concat(modality, '\\') FROM
                    (SELECT DISTINCT modality FROM series WHERE study_uid = ?1
                     AND modality IS NOT NULL ORDER BY modality))
             WHERE study_uid = ?1",
            params![uid],
        )?;
    }
    Ok(())
}

/// SQL for one matching key, appending its parameters.
fn condition(
    attr: &Attr,
    matcher: &Matcher,
    fuzzy: bool,
    params: &mut Vec<String>,
) -> Option<String> {
    let column = format!("{}.{}", alias(attr.level), attr.column);
    let is_name = attr.vr == "PN";
    let is_time = attr.vr == "TM";
    if attr.column == "modalities" {
        // ModalitiesInStudy matches a study having a series of that modality.
        return modality_condition(matcher, params);
    }
    match matcher {
        Matcher::Universal => None,
        Matcher::Single(value) if is_name && fuzzy => {
            let folded = glob_escape(&fold_name(value));
            let column = format!("{column}_norm");
            params.push(format!("{folded}*"));
            params.push(format!("*^{folded}*"));
            params.push(format!("* {folded}*"));
            Some(format!(
                "({column} GLOB ? OR {column} GLOB ? OR {column} GLOB ?)"
            ))
        }
        Matcher::Wildcard(pattern) if is_name && fuzzy => {
            params.push(wildcard_glob(&fold_name(pattern)));
            Some(format!("{column}_norm GLOB ?"))
        }
        Matcher::Single(value) => {
            params.push(value.clone());
            Some(format!("{column} = ?"))
        }
        Matcher::Wildcard(pattern) => {
            params.push(wildcard_glob(pattern));
            Some(format!("{column} GLOB ?"))
        }
        Matcher::List(values) => {
            params.extend(values.iter().cloned());
            let marks = vec!["?"; values.len()].join(", ");
            Some(format!("{column} IN ({marks})"))
        }
        Matcher::Range { from, to } => {
            let (column, normalize): (String, fn(&str) -> String) = if is_time {
                (format!("{column}_norm"), pad_time)
            } else {
                (column, str::to_string)
            };
            let mut parts = Vec::new();
            if let Some(from) = from {
                params.push(normalize(from));
                parts.push(format!("{column} >= ?"));
            }
            if let Some(to) = to {
                // An upper time bound includes the whole of its last unit.
                let bound = if is_time {
                    format!("{}\u{10FFFF}", to.replace(':', ""))
                } else {
                    to.clone()
                };
                params.push(if is_time { bound } else { normalize(&bound) });
                parts.push(format!("{column} <= ?"));
            }
            (!parts.is_empty()).then(|| format!("({})", parts.join(" AND ")))
        }
    }
}

fn modality_condition(matcher: &Matcher, params: &mut Vec<String>) -> Option<String> {
    let inner = match matcher {
        Matcher::Universal | Matcher::Range { .. } => return None,
        Matcher::Single(value) => {
            params.push(value.clone());
            "m.modality = ?".to_string()
        }
        Matcher::Wildcard(pattern) => {
            params.push(wildcard_glob(pattern));
            "m.modality GLOB ?".to_string()
        }
        Matcher::List(values) => {
            params.extend(values.iter().cloned());
            format!("m.modality IN ({})", vec!["?"; values.len()].join(", "))
        }
    };
    Some(format!(
        "EXISTS (SELECT 1 FROM series m WHERE m.study_uid = s.study_uid AND {inner})"
    ))
}

/// Escapes GLOB's own syntax in a literal (`[` starts a class).
fn glob_escape(literal: &str) -> String {
    literal.replace('[', "[[]")
}

/// A DICOM wildcard pattern (`*`, `?`) as a GLOB pattern.
fn wildcard_glob(pattern: &str) -> String {
    glob_escape(pattern)
}

fn from_clause(level: Level) -> &'static str {
    match level {
        Level::Study => "studies s",
        Level::Series => "series se JOIN studies s ON s.study_uid = se.study_uid",
        Level::Instance => {
            "instances i JOIN series se ON se.series_uid = i.series_uid \
             JOIN studies s ON s.study_uid = i.study_uid"
        }
    }
}

fn order_clause(level: Level) -> &'static str {
    match level {
        Level::Study => "s.study_date DESC, s.study_time_norm DESC, s.study_uid",
        Level::Series => "CAST(se.series_number AS INTEGER), se.series_uid",
        Level::Instance => "CAST(i.instance_number AS INTEGER), i.sop_uid",
    }
}

/// Attributes returned at `level`: its own and those of the levels above.
fn returned(level: Level) -> Vec<&'static Attr> {
    ATTRS.iter().filter(|attr| attr.level <= level).collect()
}

fn run_query(connection: &Connection, query: &Query) -> Result<QueryResult, IndexError> {
    let mut params = Vec::new();
    let mut conditions = Vec::new();
    if let Some(study) = &query.study_uid {
        params.push(study.clone());
        conditions.push("s.study_uid = ?".to_string());
    }
    if let Some(series) = &query.series_uid {
        params.push(series.clone());
        conditions.push("se.series_uid = ?".to_string());
    }
    for key in &query.keys {
        if key.attr.level > query.level {
            return Err(IndexError(format!(
                "{} cannot be matched at the {:?} level",
                key.attr.keyword, query.level
            )));
        }
        if let Some(sql) = condition(key.attr, &key.matcher, query.fuzzy, &mut params) {
            conditions.push(sql);
        }
    }
    let attrs = returned(query.level);
    let columns: Vec<String> = attrs
        .iter()
        .map(|attr| format!("{}.{}", alias(attr.level), attr.column))
        .collect();
    let where_clause = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT {} FROM {} {} ORDER BY {} LIMIT {} OFFSET {}",
        columns.join(", "),
        from_clause(query.level),
        where_clause,
        order_clause(query.level),
        query.limit.saturating_add(1),
        query.offset
    );
    let mut statement = connection.prepare_cached(&sql).map_err(err)?;
    let mut rows = statement
        .query(params_from_iter(params.iter()))
        .map_err(err)?;
    let mut result = Vec::new();
    while let Some(row) = rows.next().map_err(err)? {
        let mut values = Vec::new();
        for (index, attr) in attrs.iter().enumerate() {
            let value: Option<String> = match row.get_ref(index).map_err(err)? {
                rusqlite::types::ValueRef::Null => None,
                rusqlite::types::ValueRef::Integer(n) => Some(n.to_string()),
                rusqlite::types::ValueRef::Real(x) => Some(x.to_string()),
                rusqlite::types::ValueRef::Text(text) | rusqlite::types::ValueRef::Blob(text) => {
                    Some(String::from_utf8_lossy(text).into_owned())
                }
            };
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                values.push((*attr, value));
            }
        }
        let uid = |keyword: &str| {
            values
                .iter()
                .find(|(attr, _)| attr.keyword == keyword)
                .map(|(_, value)| value.clone())
        };
        let study_uid = uid("StudyInstanceUID").unwrap_or_default();
        let series_uid = uid("SeriesInstanceUID");
        let sop_uid = uid("SOPInstanceUID");
        result.push(ResultRow {
            values,
            study_uid,
            series_uid,
            sop_uid,
        });
    }
    let more = result.len() > query.limit;
    result.truncate(query.limit);
    Ok(QueryResult { rows: result, more })
}

fn scope_clause(scope: Scope<'_>, params: &mut Vec<String>) -> String {
    let mut clause = "study_uid = ?".to_string();
    params.push(scope.study.to_string());
    if let Some(series) = scope.series {
        clause.push_str(" AND series_uid = ?");
        params.push(series.to_string());
    }
    if let Some(instance) = scope.instance {
        clause.push_str(" AND sop_uid = ?");
        params.push(instance.to_string());
    }
    clause
}

impl Index for SqliteIndex {
    fn prepare(&self, batch: u64, records: &[InstanceRecord]) -> Result<(), IndexError> {
        let mut connection = lock(&self.writer);
        let tx = connection.transaction().map_err(err)?;
        for record in records {
            tx.execute(
                "INSERT INTO pending (batch, sop_uid, path) VALUES (?1, ?2, ?3)",
                params![batch as i64, record.sop_uid, record.path],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    fn publish(&self, batch: u64, records: &[InstanceRecord]) -> Result<(), IndexError> {
        let mut connection = lock(&self.writer);
        let tx = connection.transaction().map_err(err)?;
        for record in records {
            upsert(&tx, record).map_err(err)?;
        }
        refresh_counts(&tx, records).map_err(err)?;
        tx.execute(
            "DELETE FROM pending WHERE batch = ?1",
            params![batch as i64],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    fn abandon(&self, batch: Option<u64>, root: &Path) -> Result<usize, IndexError> {
        let mut connection = lock(&self.writer);
        let tx = connection.transaction().map_err(err)?;
        // -1 matches no batch id: with `None` every batch is abandoned.
        let batch_param = batch.map_or(-1, |batch| batch as i64);
        let orphans: Vec<String> = {
            let mut statement = tx
                .prepare(
                    "SELECT p.path FROM pending p
                     WHERE (?1 = -1 OR p.batch = ?1)
                     AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.sop_uid = p.sop_uid)",
                )
                .map_err(err)?;
            let rows = statement
                .query_map(params![batch_param], |row| row.get::<_, String>(0))
                .map_err(err)?;
            rows.collect::<Result<_, _>>().map_err(err)?
        };
        let mut removed = 0;
        for path in orphans {
            match std::fs::remove_file(root.join(&path)) {
                Ok(()) => removed += 1,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(err(format!("cannot remove {path}: {error}"))),
            }
        }
        tx.execute(
            "DELETE FROM pending WHERE ?1 = -1 OR batch = ?1",
            params![batch_param],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(removed)
    }

    fn query(&self, query: &Query) -> Result<QueryResult, IndexError> {
        self.read(|connection| run_query(connection, query))
    }

    fn instances(&self, scope: Scope<'_>) -> Result<Vec<StoredInstance>, IndexError> {
        self.read(|connection| {
            let mut params = Vec::new();
            let clause = scope_clause(scope, &mut params);
            let sql = format!(
                "SELECT study_uid, series_uid, sop_uid, sop_class_uid, transfer_syntax, path, size
                 FROM instances WHERE {clause}
                 ORDER BY series_uid, CAST(instance_number AS INTEGER), sop_uid"
            );
            let mut statement = connection.prepare_cached(&sql).map_err(err)?;
            let rows = statement
                .query_map(params_from_iter(params.iter()), |row| {
                    Ok(StoredInstance {
                        study_uid: row.get(0)?,
                        series_uid: row.get(1)?,
                        sop_uid: row.get(2)?,
                        sop_class_uid: row.get::<_, Option<String>>(3)?.unwrap_or_default(),
                        transfer_syntax: row.get::<_, Option<String>>(4)?.unwrap_or_default(),
                        path: row.get(5)?,
                        size: row.get::<_, i64>(6)?.max(0) as u64,
                    })
                })
                .map_err(err)?;
            rows.collect::<Result<_, _>>().map_err(err)
        })
    }

    fn metadata(&self, scope: Scope<'_>) -> Result<Vec<MetadataRow>, IndexError> {
        self.read(|connection| {
            let mut params = Vec::new();
            let clause = scope_clause(scope, &mut params);
            let sql = format!(
                "SELECT series_uid, sop_uid, metadata_json FROM instances WHERE {clause}
                 ORDER BY series_uid, CAST(instance_number AS INTEGER), sop_uid"
            );
            let mut statement = connection.prepare_cached(&sql).map_err(err)?;
            let rows = statement
                .query_map(params_from_iter(params.iter()), |row| {
                    Ok(MetadataRow {
                        series_uid: row.get(0)?,
                        sop_uid: row.get(1)?,
                        json: row.get(2)?,
                    })
                })
                .map_err(err)?;
            rows.collect::<Result<_, _>>().map_err(err)
        })
    }

    fn sample_metadata(&self, scope: Scope<'_>) -> Result<Option<String>, IndexError> {
        self.read(|connection| {
            let mut params = Vec::new();
            let clause = scope_clause(scope, &mut params);
            let sql = format!(
                "SELECT metadata_json FROM instances WHERE {clause}
                 ORDER BY CAST(instance_number AS INTEGER), sop_uid LIMIT 1"
            );
            connection
                .prepare_cached(&sql)
                .map_err(err)?
                .query_row(params_from_iter(params.iter()), |row| row.get(0))
                .optional()
                .map_err(err)
        })
    }

    fn layout(&self, study: &str, series: &str, sop: &str) -> Result<Option<String>, IndexError> {
        self.read(|connection| {
            connection
                .query_row(
                    "SELECT layout_json FROM instances
                     WHERE study_uid = ?1 AND series_uid = ?2 AND sop_uid = ?3",
                    params![study, series, sop],
                    |row| row.get(0),
                )
                .optional()
                .map_err(err)
        })
    }

    fn count(&self) -> Result<u64, IndexError> {
        self.read(|connection| {
            connection
                .query_row("SELECT count(*) FROM instances", [], |row| {
                    row.get::<_, i64>(0)
                })
                .map(|n| n.max(0) as u64)
                .map_err(err)
        })
    }
}
