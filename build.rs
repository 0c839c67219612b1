//! Minifies the widget's script (`widget/widget.js`) into `$OUT_DIR`, where
//! `src/http/assets.rs` includes it: parsed by oxc, names shortened, dead
//! code dropped, printed without white space. A syntax error in the widget
//! fails the build here, with oxc's message, rather than in a visitor's
//! browser. The styles' slot (`"__CHATGATE_CSS__"`) is kept as a
//! double-quoted literal, which the server replaces at startup.

use std::path::Path;

use oxc_allocator::Allocator;
use oxc_codegen::{Codegen, CodegenOptions};
use oxc_minifier::{Minifier, MinifierOptions};
use oxc_parser::Parser;
use oxc_span::SourceType;

const SOURCE: &str = "widget/widget.js";
const SLOT: &str = "__CHATGATE_CSS__";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    let source = std::fs::read_to_string(SOURCE).expect("widget/widget.js is readable");
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, &source, SourceType::cjs()).parse();
    if !parsed.diagnostics.is_empty() || parsed.panicked {
        for error in &parsed.diagnostics {
            eprintln!("{error:?}");
        }
        panic!("{SOURCE} does not parse: {:?}", parsed.diagnostics);
    }
    let mut program = parsed.program;
    let minified = Minifier::new(MinifierOptions::default()).minify(&allocator, &mut program);
    let code = Codegen::new()
        .with_options(CodegenOptions::minify())
        .with_scoping(minified.scoping)
        .build(&program)
        .code;
    // The printer may quote the slot with any quote; the server looks for
    // the double-quoted form.
    let quoted = format!("\"{SLOT}\"");
    let code = ['`', '\''].iter().fold(code, |code, q| {
        code.replace(&format!("{q}{SLOT}{q}"), &quoted)
    });
    assert_eq!(
        code.matches(&quoted).count(),
        1,
        "the minified widget keeps one {quoted}"
    );
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(Path::new(&out).join("widget.min.js"), code).expect("OUT_DIR is writable");
}
