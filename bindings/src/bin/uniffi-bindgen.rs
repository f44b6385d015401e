//! `cargo run -p opkey-ffi --bin uniffi-bindgen -- generate --library …`: the UniFFI
//! generator pinned with the library (see `bindings/generate`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
