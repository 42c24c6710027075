#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| azmi_fuzz::entries::certificate_pkcs12(data));
