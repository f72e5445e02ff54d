#![no_main]
// The guard reads token JSON with a flat scanner and falls back to serde outside its subset:
// wherever the scanner answers, it must answer as serde does (the differential oracle).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some(agree) = confab::guard::internal::jose_flat_agrees_with_serde(data) {
        assert!(agree, "flat JSON scanner and serde disagree");
    }
});
