//! tracemark decoder
