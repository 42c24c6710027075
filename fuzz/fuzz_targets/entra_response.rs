#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| azmi_fuzz::entries::entra_response(data));
