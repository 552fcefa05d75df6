//! `dockward-wasm-bindgen INPUT.wasm OUT_DIR OUT_NAME`: what
//! `wasm-bindgen --target web --no-typescript --out-dir OUT_DIR --out-name OUT_NAME INPUT.wasm`
//! does, with the same defaults as that command line.

use std::process::ExitCode;

use wasm_bindgen_cli_support::Bindgen;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, out_dir, out_name] = args.as_slice() else {
        eprintln!("usage: dockward-wasm-bindgen INPUT.wasm OUT_DIR OUT_NAME");
        return ExitCode::from(2);
    };
    let mut b = Bindgen::new();
    let mut run = || {
        b.input_path(input)
            .web(true)?
            .typescript(false)
            .demangle(true)
            .omit_default_module_path(false)
            .out_name(out_name)
            .generate(out_dir)
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dockward-wasm-bindgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}
