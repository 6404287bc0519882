#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| bertlab::fuzzing::dataset(data));
