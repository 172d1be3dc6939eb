//! Which device computes: burn's flex CPU backend (the default, in every build, and the one the
//! determinism promises are made for), or LibTorch on the CPU or a CUDA GPU in a build with the
//! `tch` feature (`cargo build --features lab/tch`, against PyTorch 2.9's libtorch).

use burn::prelude::Device;

/// The names `--device` and `LAB_DEVICE` take.
pub const NAMES: &str = "flex, tch-cpu, cuda:N";

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device `{0}`: use one of {NAMES}")]
    Unknown(String),
    #[error(
        "device `{0}` needs LibTorch, and this lab was built without the `tch` feature \
         (just test-tch builds one)"
    )]
    NoLibTorch(String),
}

/// The name a spec records for `name`: `None` for the default (flex), else the name in its
/// one spelling. Any build accepts any known name here; running on LibTorch needs the `tch`
/// feature ([`parse`] says so).
pub fn canonical_name(name: &str) -> Result<Option<String>, String> {
    let name = name.trim();
    match name {
        "" | "flex" => Ok(None),
        "tch-cpu" | "libtorch" => Ok(Some("tch-cpu".into())),
        _ => name
            .strip_prefix("cuda:")
            .or_else(|| name.strip_prefix("tch-cuda:"))
            .and_then(|i| i.parse::<usize>().ok())
            .map(|index| Some(format!("cuda:{index}")))
            .ok_or_else(|| DeviceError::Unknown(name.to_string()).to_string()),
    }
}

/// The device a name picks.
pub fn parse(name: &str) -> Result<Device, DeviceError> {
    let name = name.trim();
    match name {
        "" | "flex" => return Ok(Device::flex()),
        "tch-cpu" | "libtorch" => return libtorch_cpu(name),
        _ => {}
    }
    let index = name
        .strip_prefix("cuda:")
        .or_else(|| name.strip_prefix("tch-cuda:"))
        .and_then(|i| i.parse::<usize>().ok())
        .ok_or_else(|| DeviceError::Unknown(name.to_string()))?;
    libtorch_cuda(name, index)
}

// burn 0.22 deprecates its LibTorch backend in favour of CubeCL's; it is still the one that runs
// PyTorch's own kernels, which is what a side-by-side check against transformers wants.
#[cfg(feature = "tch")]
#[allow(deprecated)]
fn libtorch_cpu(_name: &str) -> Result<Device, DeviceError> {
    Ok(Device::libtorch())
}

#[cfg(not(feature = "tch"))]
fn libtorch_cpu(name: &str) -> Result<Device, DeviceError> {
    Err(DeviceError::NoLibTorch(name.to_string()))
}

#[cfg(feature = "tch")]
#[allow(deprecated)]
fn libtorch_cuda(_name: &str, index: usize) -> Result<Device, DeviceError> {
    Ok(Device::libtorch_cuda(index))
}

#[cfg(not(feature = "tch"))]
fn libtorch_cuda(name: &str, _index: usize) -> Result<Device, DeviceError> {
    Err(DeviceError::NoLibTorch(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_and_unknown_names_refused() {
        assert!(matches!(parse("flex"), Ok(d) if d == Device::flex()));
        assert!(matches!(parse(""), Ok(d) if d == Device::flex()));
        let err = parse("gpu").unwrap_err().to_string();
        assert!(err.contains("`gpu`") && err.contains(NAMES), "{err}");
        assert!(matches!(parse("cuda:x"), Err(DeviceError::Unknown(_))));
        if cfg!(feature = "tch") {
            assert!(parse("tch-cpu").is_ok());
        } else {
            let err = parse("cuda:0").unwrap_err().to_string();
            assert!(err.contains("`tch` feature"), "{err}");
        }
    }
}
