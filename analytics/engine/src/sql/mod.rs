//! The SQL surface: table providers over views, `view_instance`, `property_get`, and a session
//! per query carrying the out-of-band time range.

mod property_get;
mod session;
mod view_instance;
mod view_table;

pub use property_get::PropertyGet;
pub use session::{make_session, QueryRange};
pub use view_instance::ViewInstanceFunction;
pub use view_table::{memory_scan, project_batches, BatchSource, ScanRequest, ViewTable};
