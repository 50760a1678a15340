//! The catalog's two databases behind one small interface: SQLite (one
//! file beside umbra.toml, the default) and PostgreSQL (a server shared by
//! many workers, docs/SCALE.md). The catalog writes its SQL once, in the
//! part of SQL both understand, with `?N` placeholders; here they become
//! PostgreSQL's `$N`, and values are converted to the type each parameter
//! of a PostgreSQL statement has (SQLite has one integer type, PostgreSQL
//! several). Dialect differences that SQL text cannot hide are methods of
//! [`Db`] (`glob`, `returning_id`, the schema).

use std::cell::RefCell;
use std::fmt;

/// One value of a parameter or of a result column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// What a catalog statement failed with, from either database.
#[derive(Debug)]
pub enum DbError {
    Sqlite(rusqlite::Error),
    Postgres(postgres::Error),
    /// A column that is not of the type the catalog reads it as.
    Type {
        column: usize,
        wanted: &'static str,
    },
    /// A statement that returns rows returned none.
    NoRow,
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(e) => write!(f, "{e}"),
            // postgres::Error's Display is terse ("db error"); its source
            // holds the server's message.
            Self::Postgres(e) => match e.as_db_error() {
                Some(db) => write!(f, "{}: {}", db.severity(), db.message()),
                None => match std::error::Error::source(e) {
                    Some(s) => write!(f, "{e}: {s}"),
                    None => write!(f, "{e}"),
                },
            },
            Self::Type { column, wanted } => {
                write!(f, "column {column} of a result is not {wanted}")
            }
            Self::NoRow => write!(f, "the statement returned no row"),
        }
    }
}

impl std::error::Error for DbError {}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => Self::NoRow,
            e => Self::Sqlite(e),
        }
    }
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> Self {
        Self::Postgres(e)
    }
}

pub type DbResult<T> = std::result::Result<T, DbError>;

/// A value that can be a statement parameter.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, |v| v.to_value())
    }
}
macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(*self as i64)
            }
        }
    )*};
}
int_value!(i64, i32, u8, u32, usize);
impl ToValue for u64 {
    fn to_value(&self) -> Value {
        Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}
impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(*self as i64)
    }
}
impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}
impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}
impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}
impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}
impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

/// Statement parameters: `vals![a, b, c]`.
macro_rules! vals {
    ($($e:expr),* $(,)?) => {
        &[$($crate::archive::db::ToValue::to_value(&$e)),*][..]
    };
}
pub(crate) use vals;

/// A value a result column can be read as.
pub trait FromValue: Sized {
    const WANTED: &'static str;
    fn from_value(v: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    const WANTED: &'static str = "an integer";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}
impl FromValue for u64 {
    const WANTED: &'static str = "a non-negative integer";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        }
    }
}
impl FromValue for bool {
    const WANTED: &'static str = "a boolean";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => Some(*i != 0),
            _ => None,
        }
    }
}
impl FromValue for String {
    const WANTED: &'static str = "text";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}
impl FromValue for Vec<u8> {
    const WANTED: &'static str = "bytes";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Blob(b) => Some(b.clone()),
            // SQLite keeps what it was given: a text value in a BLOB column
            // (catalogs migrated from version 1) reads as its bytes.
            Value::Text(s) => Some(s.as_bytes().to_vec()),
            _ => None,
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    const WANTED: &'static str = T::WANTED;
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// `Err(NoRow)` as `Ok(None)`.
pub trait Optional<T> {
    fn optional(self) -> DbResult<Option<T>>;
}

impl<T> Optional<T> for DbResult<T> {
    fn optional(self) -> DbResult<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(DbError::NoRow) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// One result row.
#[derive(Debug, Clone)]
pub struct Row(Vec<Value>);

impl Row {
    /// Column `i`, read as `T`.
    pub fn get<T: FromValue>(&self, i: usize) -> DbResult<T> {
        self.0.get(i).and_then(T::from_value).ok_or(DbError::Type {
            column: i,
            wanted: T::WANTED,
        })
    }
}

/// Which database a catalog is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// An open connection to either database.
pub enum Db {
    Sqlite(rusqlite::Connection),
    /// `postgres::Client` wants `&mut self` for every statement; the
    /// catalog's readers take `&self` (one connection, one thread).
    Postgres(RefCell<postgres::Client>),
}

/// `?N` placeholders as PostgreSQL's `$N` (none of the catalog's SQL has a
/// `?` inside a string literal).
fn to_postgres(sql: &str) -> String {
    sql.replace('?', "$")
}

impl postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        match self {
            Value::Null => Ok(postgres::types::IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => Err(format!("an integer for a parameter of type {ty}").into()),
            },
            Value::Real(r) => match *ty {
                Type::FLOAT8 => r.to_sql(ty, out),
                Type::FLOAT4 => (*r as f32).to_sql(ty, out),
                _ => Err(format!("a real number for a parameter of type {ty}").into()),
            },
            Value::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    s.as_str().to_sql(ty, out)
                }
                _ => Err(format!("text for a parameter of type {ty}").into()),
            },
            Value::Blob(b) => match *ty {
                Type::BYTEA => b.as_slice().to_sql(ty, out),
                _ => Err(format!("bytes for a parameter of type {ty}").into()),
            },
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl<'a> postgres::types::FromSql<'a> for Value {
    fn from_sql(
        ty: &postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        Ok(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)? as i64),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)? as i64),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)? as i64),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)? as f64),
            Type::BYTEA => Value::Blob(<Vec<u8>>::from_sql(ty, raw)?),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                Value::Text(String::from_sql(ty, raw)?)
            }
            _ => return Err(format!("a column of type {ty} (cast it in the query)").into()),
        })
    }

    fn from_sql_null(
        _: &postgres::types::Type,
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Value::Null)
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }
}

fn sqlite_param(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as S;
    match v {
        Value::Null => S::Null,
        Value::Int(i) => S::Integer(*i),
        Value::Real(r) => S::Real(*r),
        Value::Text(s) => S::Text(s.clone()),
        Value::Blob(b) => S::Blob(b.clone()),
    }
}

fn sqlite_row(r: &rusqlite::Row<'_>, columns: usize) -> rusqlite::Result<Row> {
    use rusqlite::types::ValueRef;
    (0..columns)
        .map(|i| {
            Ok(match r.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Int(i),
                ValueRef::Real(f) => Value::Real(f),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            })
        })
        .collect::<rusqlite::Result<Vec<_>>>()
        .map(Row)
}

impl Db {
    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs one statement; returns the rows it changed.
    pub fn execute(&self, sql: &str, params: &[Value]) -> DbResult<u64> {
        match self {
            Db::Sqlite(c) => {
                let p: Vec<rusqlite::types::Value> = params.iter().map(sqlite_param).collect();
                Ok(c.execute(sql, rusqlite::params_from_iter(p))? as u64)
            }
            Db::Postgres(c) => {
                let p: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    params.iter().map(|v| v as _).collect();
                Ok(c.borrow_mut().execute(to_postgres(sql).as_str(), &p)?)
            }
        }
    }

    /// Runs one query; returns its rows.
    pub fn query(&self, sql: &str, params: &[Value]) -> DbResult<Vec<Row>> {
        match self {
            Db::Sqlite(c) => {
                let p: Vec<rusqlite::types::Value> = params.iter().map(sqlite_param).collect();
                let mut stmt = c.prepare_cached(sql)?;
                let columns = stmt.column_count();
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(p), |r| sqlite_row(r, columns))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            }
            Db::Postgres(c) => {
                let p: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    params.iter().map(|v| v as _).collect();
                let rows = c.borrow_mut().query(to_postgres(sql).as_str(), &p)?;
                rows.iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| r.try_get::<_, Value>(i))
                            .collect::<Result<Vec<_>, _>>()
                            .map(Row)
                            .map_err(DbError::from)
                    })
                    .collect()
            }
        }
    }

    /// The first row of a query, if it returned any.
    pub fn query_opt(&self, sql: &str, params: &[Value]) -> DbResult<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row of a query that always returns one.
    pub fn query_one(&self, sql: &str, params: &[Value]) -> DbResult<Row> {
        self.query_opt(sql, params)?.ok_or(DbError::NoRow)
    }

    /// Each row of a query, mapped by `f`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: &[Value],
        f: impl FnMut(&Row) -> DbResult<T>,
    ) -> DbResult<Vec<T>> {
        self.query(sql, params)?.iter().map(f).collect()
    }

    /// The first row of a query, mapped by `f`; [`DbError::NoRow`] if it
    /// returned none ([`Optional::optional`] makes that `None`).
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: &[Value],
        f: impl FnOnce(&Row) -> DbResult<T>,
    ) -> DbResult<T> {
        f(&self.query_one(sql, params)?)
    }

    /// Statements without parameters, separated by semicolons.
    pub fn batch(&self, sql: &str) -> DbResult<()> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Db::Postgres(c) => Ok(c.borrow_mut().batch_execute(sql)?),
        }
    }

    /// Begins a transaction that writes: SQLite takes its write lock at
    /// once (`IMMEDIATE`), so that two writers never deadlock on upgrade.
    pub fn begin(&self) -> DbResult<()> {
        self.batch(match self {
            Db::Sqlite(_) => "BEGIN IMMEDIATE",
            Db::Postgres(_) => "BEGIN",
        })
    }

    /// `column GLOB pattern-parameter` (SQLite's GLOB: `*`, `?`, `[...]`,
    /// case-sensitive, whole string); PostgreSQL gets the same match as a
    /// regular expression, the parameter made by [`glob_to_regex`].
    pub fn glob(&self, column: &str, param: &str) -> String {
        match self {
            Db::Sqlite(_) => format!("{column} GLOB {param}"),
            Db::Postgres(_) => format!("{column} ~ {param}"),
        }
    }

    /// A GLOB pattern as this database's [`Db::glob`] wants it.
    pub fn glob_param(&self, pattern: Option<&str>) -> Option<String> {
        pattern.map(|p| match self {
            Db::Sqlite(_) => p.to_string(),
            Db::Postgres(_) => glob_to_regex(p),
        })
    }
}

/// SQLite's GLOB pattern as an anchored POSIX regular expression: `*` any
/// run, `?` one character, `[...]` a class (`[^...]` its complement, as in
/// GLOB), every other character literal.
pub fn glob_to_regex(glob: &str) -> String {
    let mut out = String::from("^");
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '[' => {
                // A class runs to the next ']' that is not its first
                // character; an unclosed '[' is literal, as in GLOB.
                let rest: String = chars.clone().collect();
                let first_close = rest
                    .char_indices()
                    .skip(if rest.starts_with('^') { 2 } else { 1 })
                    .find(|&(_, ch)| ch == ']')
                    .map(|(i, _)| i);
                match first_close {
                    Some(end) => {
                        let class = &rest[..end];
                        out.push('[');
                        for ch in class.chars() {
                            if ch == '\\' {
                                out.push_str("\\\\");
                            } else {
                                out.push(ch);
                            }
                        }
                        out.push(']');
                        for _ in 0..class.chars().count() + 1 {
                            chars.next();
                        }
                    }
                    None => out.push_str("\\["),
                }
            }
            c if "\\.+()|{}^$]".contains(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('$');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The regular expression matches what SQLite's GLOB matches, on a
    /// real SQLite (PostgreSQL's side is in tests/archive/postgres.rs).
    #[test]
    fn glob_patterns_translate() {
        assert_eq!(glob_to_regex("a*b?.dcm"), "^a.*b.\\.dcm$");
        assert_eq!(glob_to_regex("x[0-9]y"), "^x[0-9]y$");
        assert_eq!(glob_to_regex("x[^ab]"), "^x[^ab]$");
        assert_eq!(glob_to_regex("x[]a]"), "^x[]a]$");
        assert_eq!(glob_to_regex("a[b"), "^a\\[b$");
        assert_eq!(glob_to_regex("(1+1)$"), "^\\(1\\+1\\)\\$$");
    }

    #[test]
    fn sqlite_values_round_trip() {
        let db = Db::Sqlite(rusqlite::Connection::open_in_memory().unwrap());
        db.batch("CREATE TABLE t (i INTEGER, s TEXT, b BLOB)")
            .unwrap();
        let none: Option<String> = None;
        db.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3)",
            vals![7i64, "x", b"\xff\x00".as_slice()],
        )
        .unwrap();
        db.execute("INSERT INTO t VALUES (?1, ?2, NULL)", vals![true, none])
            .unwrap();
        let rows = db
            .query("SELECT i, s, b FROM t ORDER BY i DESC", &[])
            .unwrap();
        assert_eq!(rows[0].get::<i64>(0).unwrap(), 7);
        assert_eq!(rows[0].get::<String>(1).unwrap(), "x");
        assert_eq!(rows[0].get::<Vec<u8>>(2).unwrap(), vec![0xff, 0]);
        assert!(rows[1].get::<bool>(0).unwrap());
        assert_eq!(rows[1].get::<Option<String>>(1).unwrap(), None);
        assert!(matches!(
            rows[0].get::<String>(0),
            Err(DbError::Type { column: 0, .. })
        ));
    }
}
