//! zerolabel: a fully functional image classifier from unlabelled images and class names.
//!
//! Stages (Sam, Agarwalla, Babu, AAAI-22): features -> [`cluster`] (stage II) ->
//! [`matching`] (stage III) against the label [`prior`], with [`ot`] underneath; [`eval`] is
//! the only reader of labels. [`experiment`] runs the stages over seeds; [`pipeline`] makes each
//! stage a step with files in and out, [`run`] chains them with caching, [`report`] and [`plot`]
//! write the report, [`predict`] applies a finished run; [`config`] and [`cli`] are the program.
pub mod assignment;
pub mod backbone;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod experiment;
pub mod fuzz;
pub mod io;
pub mod matching;
pub mod memory;
pub mod naming;
pub mod ot;
pub mod pipeline;
pub mod pixel_features;
pub mod plot;
pub mod predict;
pub mod prior;
pub mod progress;
pub mod report;
pub mod rng;
pub mod run;

pub use error::{Error, Result};
