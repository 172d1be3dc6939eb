//! R1 Lab's terminal UI.
//!
//! - [`app`]: the state and `update(action)`; no I/O.
//! - [`worker`]: the background thread that owns a read-only store and starts `lab` processes.
//! - [`ui`] and [`views`]: drawing, one module per view (Runs, Launch, Compare, Mixing, Traces,
//!   Diff, SQL) with its state, keys and `draw`.
//! - [`chart`], [`time`], [`input`]: small pure helpers.

pub mod app;
pub mod chart;
pub mod data;
pub mod input;
pub mod time;
pub mod ui;
pub mod views;
pub mod worker;

pub use app::{Action, App, AppConfig, View};
pub use worker::{Worker, WorkerConfig};
