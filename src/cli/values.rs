//! The command line's names for the library's choices (`--recipe varied`,
//! `--loss hinge`, ...): clap's `ValueEnum` for each, so the library's
//! types stay free of clap.

use std::net::SocketAddr;

use clap::ValueEnum;
use clap::builder::PossibleValue;

use crate::backend::DeviceChoice;
use crate::data::DatasetKind;
use crate::model::discriminator::Conditioning;
use crate::native::Precision;
use crate::optim::LrSchedule;
use crate::optim::loss::GanLoss;
use crate::train::recipe::Recipe;

/// `ValueEnum` for `$ty`: each variant with its name on the command line,
/// any older names still accepted, and its help.
macro_rules! value_enum {
    ($ty:ty { $($variant:path => $name:literal $([$($alias:literal),+])?: $help:expr),+ $(,)? }) => {
        impl ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($variant),+]
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(match self {
                    $($variant => PossibleValue::new($name)$($(.alias($alias))+)?.help($help)),+
                })
            }
        }
    };
}

value_enum!(Recipe {
    Recipe::Varied => "varied": Recipe::Varied.about(),
    Recipe::Fast => "fast": Recipe::Fast.about(),
    Recipe::Original => "original" ["seed"]: Recipe::Original.about(),
});

value_enum!(DatasetKind {
    DatasetKind::Mnist => "mnist":
        "Handwritten digits (LeCun et al.); ships in this repository under data/mnist/",
    DatasetKind::FashionMnist => "fashion-mnist":
        "Zalando's garments (Xiao et al.); Debian's dataset-fashion-mnist package installs it",
    DatasetKind::Folder => "folder":
        "A folder of your own images, one sub-folder per class (--data DIR)",
});

value_enum!(GanLoss {
    GanLoss::Bce => "bce":
        "Binary cross-entropy on D's logit; G minimises BCE(D(fake), 1) (non-saturating)",
    GanLoss::Hinge => "hinge":
        "Hinge: D minimises relu(1 - D(real)) + relu(1 + D(fake)); G minimises -D(fake)",
});

value_enum!(LrSchedule {
    LrSchedule::Constant => "constant": "The same rate throughout",
    LrSchedule::Linear => "linear": "Straight down to zero at the end of the run",
    LrSchedule::Cosine => "cosine": "Half a cosine down to zero at the end of the run",
});

value_enum!(Conditioning {
    Conditioning::Planes => "planes": "One constant plane per class, stacked onto the image",
    Conditioning::Projection => "projection":
        "A learned class embedding dotted with D's pooled features",
    Conditioning::Both => "both": "The label planes, and the projection term at the end",
});

value_enum!(Precision {
    Precision::Fp32 => "fp32": "fp32 operands and sums",
    Precision::Bf16 => "bf16":
        "Operands rounded to bf16, sums in fp32: twice the arithmetic rate with AVX512_BF16",
    Precision::Auto => "auto":
        "Each product shape in fp32 or bf16, whichever measured faster on this CPU (cached)",
});

value_enum!(DeviceChoice {
    DeviceChoice::Cpu => "cpu": "The CPU, through burn's Flex backend",
    DeviceChoice::Cuda => "cuda": "An NVIDIA GPU through burn's CUDA backend (cargo feature cuda)",
    DeviceChoice::Wgpu => "wgpu": "A GPU through burn's wgpu backend (cargo feature wgpu)",
});

/// `--addr`: an address, or a host name this machine resolves (localhost).
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let hint = "give HOST:PORT, e.g. 127.0.0.1:8080 or localhost:8080";
    match text.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{text} names no address; {hint}")),
        Err(e) => Err(format!("{e}; {hint}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_recipe_answers_to_its_old_name() {
        assert_eq!(Recipe::from_str("original", false), Ok(Recipe::Original));
        assert_eq!(Recipe::from_str("seed", false), Ok(Recipe::Original));
        assert_eq!(
            DatasetKind::from_str("fashion-mnist", false),
            Ok(DatasetKind::FashionMnist)
        );
        assert!(Precision::from_str("fp16", false).is_err());
    }
}
