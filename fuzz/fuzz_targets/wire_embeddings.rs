#![no_main]
// Thin shell: the logic and its documentation live in confab::internal::fuzzing::wire_embeddings.
libfuzzer_sys::fuzz_target!(|data: &[u8]| confab::internal::fuzzing::wire_embeddings(data));
