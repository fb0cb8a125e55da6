//! Stage I: self-supervised features (SimCLR on a ResNet backbone), or a pretrained encoder
//! brought as TorchScript.
pub mod pretrain;
pub mod resnet;
pub mod simclr;
pub mod torchscript;
