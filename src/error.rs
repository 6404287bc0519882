//! The crate's error: one enum across the GPU, model, data and training layers, whose variants are
//! what callers match on (a non-finite step, a lost device, a mismatched tensor, bad data, a limit).
//! No control flow depends on the text of a message; the text is for people.

use std::fmt;

use crate::gpu::GpuError;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The gradients became NaN or infinite; the step was skipped and the weights are unchanged.
    /// `step` is the run's step, where the caller knows it.
    NonFinite { step: Option<usize> },
    /// The GPU device is gone (destroyed, driver reset, GPU process crash): nothing more runs on
    /// it; a new device (a reload in the browser) is needed.
    DeviceLost(String),
    /// Any other GPU failure: validation, out of memory, limits, readback.
    Gpu(GpuError),
    /// A tensor or config that does not fit the model, with the tensor's name.
    Shape { tensor: String, message: String },
    /// Bad input data, with its 1-based line (0: the whole input).
    Data { line: usize, message: String },
    /// Beyond a stated limit (data size, rows, model size, a setting's range).
    Limit(String),
    /// The model is held by another command (a run, a generation): what holds it and what to do.
    Busy(String),
    /// Anything else, said in words.
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub const NON_FINITE: &str = "the gradients became NaN or infinite, so the step was skipped and the weights are unchanged; lower the learning rate";

impl Error {
    /// A non-finite step at `step` of a run.
    pub fn non_finite(step: usize) -> Error {
        Error::NonFinite { step: Some(step) }
    }

    pub fn is_device_lost(&self) -> bool {
        matches!(self, Error::DeviceLost(_))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NonFinite { step: Some(s) } => write!(f, "step {s}: {NON_FINITE}"),
            Error::NonFinite { step: None } => write!(f, "{NON_FINITE}"),
            Error::DeviceLost(m) => write!(f, "the GPU device was lost ({m})"),
            Error::Gpu(e) => write!(f, "{e}"),
            Error::Shape { tensor, message } if message.contains(tensor.as_str()) => write!(f, "{message}"),
            Error::Shape { tensor, message } => write!(f, "{tensor}: {message}"),
            Error::Data { line: 0, message } => write!(f, "{message}"),
            Error::Data { line, message } => write!(f, "line {line}: {message}"),
            Error::Busy(m) => write!(f, "busy: {m}"),
            Error::Limit(m) | Error::Other(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<GpuError> for Error {
    fn from(e: GpuError) -> Error {
        match e {
            GpuError::DeviceLost(m) => Error::DeviceLost(m),
            GpuError::Limits(m) => Error::Limit(format!("beyond the GPU's limits: {m}")),
            e => Error::Gpu(e),
        }
    }
}

impl From<String> for Error {
    fn from(m: String) -> Error {
        Error::Other(m)
    }
}

impl From<&str> for Error {
    fn from(m: &str) -> Error {
        Error::Other(m.to_string())
    }
}

/// For the layers that still speak in `String` errors: the message, as a person reads it.
impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}

/// Text that is not UTF-8, JSON that does not parse: said in words (the caller adds which file).
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error::Other(format!("invalid JSON: {e}"))
    }
}

impl From<std::str::Utf8Error> for Error {
    fn from(e: std::str::Utf8Error) -> Error {
        Error::Other(format!("not UTF-8 text: {e}"))
    }
}

impl From<std::string::FromUtf8Error> for Error {
    fn from(e: std::string::FromUtf8Error) -> Error {
        Error::Other(format!("not UTF-8 text: {e}"))
    }
}
