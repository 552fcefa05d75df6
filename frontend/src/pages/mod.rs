//! The console's pages, one file a page. Text only: every string from a
//! container — names, labels, env values, log lines — goes through Leptos
//! text or attribute escaping; nothing is injected as HTML.

mod app_logs;
mod audit;
mod container;
mod login;
mod logs;
mod network;
mod overview;

pub use app_logs::AppLogs;
pub use audit::Audit;
pub use container::Detail;
pub use login::Login;
pub use logs::Logs;
pub use network::Network;
pub use overview::Overview;
