#![no_main]
// Thin shell: the logic and its documentation live in confab::internal::fuzzing::jose_flat.
libfuzzer_sys::fuzz_target!(|data: &[u8]| confab::internal::fuzzing::jose_flat(data));
