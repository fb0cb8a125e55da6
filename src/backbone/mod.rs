//! Stage I: self-supervised features (SimCLR on a ResNet backbone).
pub mod pretrain;
pub mod resnet;
pub mod simclr;
