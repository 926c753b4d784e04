//! One adapter per wire protocol.

mod openai_compat;

pub use openai_compat::OpenAiCompat;
