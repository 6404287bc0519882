//! Training: masked-LM and sentence-order batches, the classification and pretraining loops, and
//! their metrics. The browser UI and the native CLI both drive this.

pub mod batches;
pub mod checkpoint;
pub mod checks;
pub mod generate;
pub mod masking;
pub mod metrics;
pub mod schedule;
pub mod sop;
pub mod spec;
pub mod trainer;
