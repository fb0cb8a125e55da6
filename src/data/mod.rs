//! Readers for everything that comes from disk. Images and labels are kept apart: labels leave
//! this module only towards evaluation.
pub mod augment;
pub mod checked;
pub mod features;
pub mod idx;
pub mod npy;
pub mod images;
pub mod mnist;
pub mod npz;
