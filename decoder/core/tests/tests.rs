//! The decoding library's integration tests: one test binary (ripgrep's layout), one
//! module per area, ring images from `tracemark-tests`' shared helpers.

mod input;
mod names;
