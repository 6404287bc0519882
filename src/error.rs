//! The crate's error: one enum across the GPU, model, data and training layers, whose variants are
//! what callers match on (a non-finite step, a lost device, a mismatched tensor, bad data, a limit,
//! an id outside the vocabulary, a failed self-check). No control flow depends on the text of a
//! message; the text is for people. There is no `From<String>`: every error says its kind where it
//! is made.

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
    /// An id outside its table: a token id beyond the vocabulary, a token type beyond the model's
    /// types, a label beyond the vocabulary, a layer or head the model lacks. `id` is the first
    /// offending one, `size` the table's (ids run from 0 to `size - 1`).
    Range { id: usize, size: usize, message: String },
    /// A file (or in the page, an address or the browser's storage) BERT Lab could not read or
    /// write, with the system's reason.
    Io { path: String, message: String },
    /// What the model or a file asks for is not something BERT Lab (or this model) does: a model
    /// type or activation it does not run, a head the model lacks, a masked model asked to generate.
    Unsupported(String),
    /// The request is incomplete or contradicts itself: a flag that needs another, a mode a command
    /// does not take, a run with nothing to train, a command before what it needs (no model loaded).
    Usage(String),
    /// A numerical self-check failed: the GPU disagrees with the CPU or PyTorch reference, or the
    /// check's fixture lacks what it compares (kernels::checks, parity, train::checks).
    Check(String),
    /// BERT Lab's own steps ran out of order (logits read before any forward, a decode before its
    /// start): a bug, not the input's fault.
    Internal(String),
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

    /// A file that could not be read or written: its path and the system's reason.
    pub fn io(path: impl fmt::Display, e: impl fmt::Display) -> Error {
        Error::Io { path: path.to_string(), message: e.to_string() }
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
            Error::Io { path, message } => write!(f, "{path}: {message}"),
            Error::Busy(m) => write!(f, "busy: {m}"),
            Error::Range { message: m, .. } | Error::Limit(m) | Error::Unsupported(m) | Error::Usage(m) | Error::Check(m) | Error::Internal(m) | Error::Other(m) => write!(f, "{m}"),
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

/// For the layers that still speak in `String` errors: the message, as a person reads it.
impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}

/// Text that is not UTF-8, JSON that does not parse: bad input data (the caller adds which file;
/// serde_json's message carries the line and column).
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error::Data { line: 0, message: format!("invalid JSON: {e}") }
    }
}

impl From<std::str::Utf8Error> for Error {
    fn from(e: std::str::Utf8Error) -> Error {
        Error::Data { line: 0, message: format!("not UTF-8 text: {e}") }
    }
}

impl From<std::string::FromUtf8Error> for Error {
    fn from(e: std::string::FromUtf8Error) -> Error {
        Error::Data { line: 0, message: format!("not UTF-8 text: {e}") }
    }
}
