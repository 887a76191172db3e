//! The SQL surface: table providers over views, `view_instance`, `property_get`, a session
//! per query carrying the out-of-band time range, and the read-only sandbox queries run in.

mod error;
mod jsonb;
mod histogram;
mod property_get;
mod sandbox;
mod session;
mod view_instance;
mod view_table;

pub use error::{QueryError, QueryErrorKind};
pub use self::jsonb::{register_jsonb_functions, MAX_JSONB_DEPTH};
pub use property_get::PropertyGet;
pub use sandbox::{cooperative, plan_read_only, SqlLimits};
pub use session::{make_session, QueryRange};
pub use view_instance::ViewInstanceFunction;
pub use view_table::{memory_scan, project_batches, BatchSource, ScanRequest, ViewTable};
