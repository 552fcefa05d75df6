//! A sparkline: a series as an SVG polyline, scaled to its largest value.

use leptos::prelude::*;

use crate::model::sparkline_points;

/// `values` (oldest first) in a box 300 wide and `height` high.
#[component]
pub fn Sparkline(
    class: &'static str,
    height: f64,
    label: &'static str,
    #[prop(into)] values: Signal<Vec<f64>>,
) -> impl IntoView {
    view! {
        <svg class=class viewBox=format!("0 0 300 {height}") preserveAspectRatio="none" role="img" aria-label=label>
            <polyline points=move || values.with(|v| sparkline_points(v, 300.0, height))/>
        </svg>
    }
}
