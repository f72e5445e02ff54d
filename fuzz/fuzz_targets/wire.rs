#![no_main]
// Thin shell: the logic and its documentation live in confab::fuzzing::wire.
libfuzzer_sys::fuzz_target!(|data: &[u8]| confab::fuzzing::wire(data));
