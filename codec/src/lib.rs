//! # semcom-codec
//!
//! The semantic codecs of semcom (meaning → tokens → bytes and back). This crate has no radio and
//! no sockets. Its modalities land one by one; none has landed yet.
