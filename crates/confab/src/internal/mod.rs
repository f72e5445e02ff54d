//! What only confab's own tests, benches and fuzz targets use: no stability promise, not part
//! of the documented surface (rustls' convention).

pub mod fuzzing;
