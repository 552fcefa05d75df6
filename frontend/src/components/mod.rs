//! The reusable pieces of the pages. Text only: every string from a
//! container goes through Leptos text or attribute escaping.

mod app_card;
mod badge;
mod bars;
mod confirm;
mod container_row;
mod header;
mod host_chip;
mod host_select;
mod log_view;
mod prune_panel;
mod pull_panel;
mod restart_button;
mod sparkline;
mod theme_toggle;
mod update;

pub use app_card::AppCard;
pub use badge::{badge_icon, badge_view, lock_view};
pub use bars::Bars;
pub use confirm::Confirm;
pub use container_row::ContainerRow;
pub use header::Header;
pub use host_chip::{HostChip, HostProblems};
pub use host_select::{first_host, HostSelect};
pub use log_view::{ansi_view, line_class, LogPeek, LogRow};
pub use prune_panel::PrunePanel;
pub use pull_panel::PullPanel;
pub use restart_button::RestartButton;
pub use sparkline::Sparkline;
pub use theme_toggle::ThemeToggle;
pub use update::{action_href, job_view, update_badge, RecreateButtons, UpdatesCtx};
