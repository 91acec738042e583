//! Wire vocabulary shared by every operation: the error-code table and lenient JSON decoding.
//! No I/O and nothing async lives here.

pub mod error_code;
pub mod lenient;

pub use error_code::ErrorCode;
