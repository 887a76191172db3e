//! Typed query errors: what went wrong decides the HTTP status (in one place, the TS server), so
//! nothing downstream has to guess it from the message.

use datafusion::error::DataFusionError;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryErrorKind {
    /// The caller's SQL: unparsable, refused by the sandbox, over a limit, or failing on its data.
    InvalidSql,
    /// Ran past the query timeout; its work was stopped.
    Timeout,
    /// Over the query memory limit.
    ResourcesExhausted,
    /// Every query slot taken and the queue full (or the wait for a slot too long).
    Overloaded,
    /// The query was cancelled by its caller (client gone).
    Cancelled,
    /// Our side failed: metadata, object store, a bug.
    Internal,
}

impl QueryErrorKind {
    /// Stable name carried across the napi boundary (`[name] message`).
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidSql => "invalid_sql",
            Self::Timeout => "timeout",
            Self::ResourcesExhausted => "resources_exhausted",
            Self::Overloaded => "overloaded",
            Self::Cancelled => "cancelled",
            Self::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone)]
pub struct QueryError {
    pub kind: QueryErrorKind,
    pub message: String,
}

impl QueryError {
    pub fn new(kind: QueryErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(QueryErrorKind::InvalidSql, message)
    }

    /// The kind of any error a query path returns: a `QueryError` anywhere in the chain keeps its
    /// kind, a DataFusion error is classified, anything else is ours.
    pub fn of(e: &anyhow::Error) -> QueryError {
        for cause in e.chain() {
            if let Some(q) = cause.downcast_ref::<QueryError>() {
                return QueryError::new(q.kind, format!("{e:#}"));
            }
            if let Some(d) = cause.downcast_ref::<DataFusionError>() {
                return QueryError::new(classify(d), format!("{e:#}"));
            }
        }
        QueryError::new(QueryErrorKind::Internal, format!("{e:#}"))
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for QueryError {}

impl From<DataFusionError> for QueryError {
    fn from(e: DataFusionError) -> Self {
        QueryError::new(classify(&e), e.to_string())
    }
}

/// Our infrastructure failing under a view (see `ViewTable`'s read errors), as opposed to the
/// caller's SQL.
fn is_infrastructure(message: &str) -> bool {
    ["connecting to PostgreSQL", "reading block payload", "object store", "Object Store"].iter().any(|m| message.contains(m))
}

fn classify(e: &DataFusionError) -> QueryErrorKind {
    match e.find_root() {
        DataFusionError::ResourcesExhausted(_) => QueryErrorKind::ResourcesExhausted,
        DataFusionError::External(inner) => match inner.downcast_ref::<QueryError>() {
            Some(q) => q.kind,
            None if is_infrastructure(&inner.to_string()) => QueryErrorKind::Internal,
            None => QueryErrorKind::InvalidSql,
        },
        DataFusionError::ObjectStore(_) | DataFusionError::IoError(_) | DataFusionError::ExecutionJoin(_) | DataFusionError::Internal(_) => QueryErrorKind::Internal,
        other if is_infrastructure(&other.to_string()) => QueryErrorKind::Internal,
        _ => QueryErrorKind::InvalidSql,
    }
}
