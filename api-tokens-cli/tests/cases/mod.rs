//! The scenarios, each a function of an [`Env`](crate::support::Env) so it runs on every
//! store; files named by the behaviour they cover.

mod audit;
mod confirm;
mod exit_codes;
mod import;
mod keys;
mod lifecycle;
mod regenerate;
mod reports;
mod secret_files;

pub use audit::audit_log_file;
pub use confirm::confirmation;
pub use exit_codes::exit_codes;
pub use import::{import_is_all_or_nothing, zabbix_import};
pub use keys::hash_keys;
pub use lifecycle::leaked_secret_lifecycle;
pub use regenerate::regenerate;
pub use reports::reports_and_formats;
pub use secret_files::secret_files;
