//! Stage I: self-supervised features (SimCLR on a ResNet backbone).
pub mod resnet;
