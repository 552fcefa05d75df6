//! CPU and memory as meters with their figures.

use leptos::prelude::*;

use crate::model::{clamp_percent, human_bytes, human_percent};

/// `cpu` in % of one core (the meter stops at 100), memory in bytes and in %
/// of the limit.
#[component]
pub fn Bars(
    #[prop(into)] cpu: Signal<f64>,
    #[prop(into)] mem: Signal<u64>,
    #[prop(into)] mem_pct: Signal<f64>,
) -> impl IntoView {
    view! {
        <div class="bars">
            <label>"CPU " <meter min="0" max="100" value=move || clamp_percent(cpu.get()).min(100.0)></meter> <span>{move || human_percent(cpu.get())}</span></label>
            <label>"Memory " <meter min="0" max="100" value=move || mem_pct.get()></meter> <span>{move || human_bytes(mem.get())}</span></label>
        </div>
    }
}
