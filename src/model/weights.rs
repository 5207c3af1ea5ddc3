//! Named host copies of a module's tensors, under the names a PyTorch user
//! recognises (`deconv1.weight`, `bn1.weight`, `bn1.running_mean`): burn's
//! batch-norm `gamma`/`beta` are PyTorch's `weight`/`bias`.
//!
//! This is the bridge between burn modules and everything that stores or
//! updates weights on the host: safetensors checkpoints and the optimizer.

use anyhow::{anyhow, bail};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};

use super::net::numbered;
pub use crate::store::{HostTensor, NamedTensors};

/// The PyTorch name of the tensor at burn module path `path`. A list's
/// entries are numbered from 1 ([`numbered`]): the layers of `blocks` by the
/// fields inside them (`blocks.1.bn_class.gain` is `bn2_class.gain`), the
/// entries of any other list by the list's own name
/// (`spectral.conv_u.0` is `spectral.conv1_u`).
pub fn torch_name(path: &[String]) -> String {
    let mut parts: Vec<String> = Vec::with_capacity(path.len());
    let mut layer = None;
    for segment in path {
        match (segment.parse::<usize>(), parts.last()) {
            (Ok(i), Some(list)) if list == "blocks" => {
                parts.pop();
                layer = Some(i + 1);
            }
            (Ok(i), Some(list)) => {
                let named = numbered(list, i + 1);
                *parts.last_mut().expect("a list") = named;
            }
            _ => parts.push(match layer.take() {
                Some(n) => numbered(segment, n),
                None => segment.clone(),
            }),
        }
    }
    if let Some(last) = parts.last_mut() {
        match last.as_str() {
            "gamma" => *last = "weight".into(),
            "beta" => *last = "bias".into(),
            _ => {}
        }
    }
    parts.join(".")
}

/// A transformation of a module's float tensors that needs each tensor's
/// module path (`["bn1", "gamma"]`): initialisers, loaders, optimizers.
pub trait PathMapper {
    /// Maps the tensor `param` found at module path `path` (field names, outermost first).
    fn map_at<const D: usize>(
        &mut self,
        path: &[String],
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>>;
}

/// Applies `mapper` to every float tensor of `module` (parameters and running
/// statistics), telling it where in the module tree each one sits.
pub fn map_with_paths<M: Module, P: PathMapper>(module: M, mapper: &mut P) -> M {
    struct Walk<'a, P> {
        path: Vec<String>,
        inner: &'a mut P,
    }
    impl<P: PathMapper> ModuleMapper for Walk<'_, P> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            self.inner.map_at(&self.path, param)
        }
    }
    module.map(&mut Walk {
        path: vec![],
        inner: mapper,
    })
}

/// Copies every float tensor of `module` (parameters and running statistics) to the host.
pub fn export<M: Module>(module: &M) -> NamedTensors {
    collect(module, true)
}

/// The names (and shapes) `export` would produce, without copying values.
pub fn export_names<M: Module>(module: &M) -> Vec<String> {
    collect(module, false).into_keys().collect()
}

/// Folds pending batch-norm running-statistic updates into the stored values.
///
/// burn's `RunningState` keeps the latest update of each thread aside until
/// the next forward pass or a `valid()` call merges it; visitors read the
/// stored value only. `valid()` merges in place (the state is shared with
/// the module), so calling it before reading makes the running statistics
/// on disk the ones the module would use next.
pub fn sync_running_stats<M: Module>(module: &M) {
    drop(module.valid());
}

fn collect<M: Module>(module: &M, with_values: bool) -> NamedTensors {
    sync_running_stats(module);
    struct Collect {
        path: Vec<String>,
        with_values: bool,
        out: NamedTensors,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let tensor = param.val();
            let shape = tensor.dims().to_vec();
            let values = match self.with_values {
                true => tensor
                    .into_data()
                    .try_into_vec::<f32>()
                    .expect("cdcgan models are f32"),
                false => vec![],
            };
            self.out
                .insert(torch_name(&self.path), HostTensor { shape, values });
        }
    }
    let mut collect = Collect {
        path: vec![],
        with_values,
        out: NamedTensors::new(),
    };
    module.visit(&mut collect);
    collect.out
}

/// Replaces every float tensor of `module` by the one of the same name in
/// `tensors`. Fails, naming the tensor, when one is missing, has another
/// shape, or when `tensors` holds names the module does not have (a checkpoint
/// of another architecture).
pub fn import<M: Module>(module: M, tensors: &NamedTensors) -> anyhow::Result<M> {
    struct Replace<'a> {
        tensors: &'a NamedTensors,
        used: usize,
        error: Option<anyhow::Error>,
    }
    impl PathMapper for Replace<'_> {
        fn map_at<const D: usize>(
            &mut self,
            path: &[String],
            param: Param<Tensor<D>>,
        ) -> Param<Tensor<D>> {
            if self.error.is_some() {
                return param;
            }
            let name = torch_name(path);
            let (id, tensor, mapper) = param.consume();
            let expected = tensor.dims().to_vec();
            let fresh = match self.tensors.get(&name) {
                None => {
                    self.error = Some(anyhow!("tensor `{name}` (shape {expected:?}) is missing"));
                    tensor
                }
                Some(host) if host.shape != expected => {
                    self.error = Some(anyhow!(
                        "tensor `{name}` has shape {:?}, this model needs {expected:?}",
                        host.shape
                    ));
                    tensor
                }
                Some(host) => {
                    self.used += 1;
                    Tensor::<D>::from_data(
                        TensorData::new(host.values.clone(), expected),
                        &tensor.device(),
                    )
                    .set_require_grad(tensor.is_require_grad())
                }
            };
            Param::from_mapped_value(id, fresh, mapper)
        }
    }
    let mut replace = Replace {
        tensors,
        used: 0,
        error: None,
    };
    let module = map_with_paths(module, &mut replace);
    if let Some(e) = replace.error {
        return Err(e);
    }
    if replace.used != tensors.len() {
        let known = export_names(&module);
        let extra: Vec<&String> = tensors.keys().filter(|k| !known.contains(k)).collect();
        bail!("unexpected tensors {extra:?}: the weights belong to another architecture");
    }
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::inference_device;
    use crate::model::GanConfig;

    #[test]
    fn weights_have_pytorch_names_and_dcgan_init() {
        let device = inference_device();
        let cfg = GanConfig::original(10, false);
        let g = cfg.generator.init_seeded(&device, 7);
        let names = export_names(&g);
        for expected in [
            "deconv1.weight",
            "deconv1.bias",
            "bn1.weight",
            "bn1.bias",
            "bn1.running_mean",
            "bn1.running_var",
            "deconv3.weight",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} not in {names:?}"
            );
        }
        let w = export(&g);
        assert_eq!(w["deconv1.weight"].shape, vec![110, 256, 7, 7]);
        let std = |v: &[f32], m: f32| {
            (v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / v.len() as f32).sqrt()
        };
        assert!((std(&w["deconv1.weight"].values, 0.0) - 0.02).abs() < 1e-3);
        assert!((std(&w["bn1.weight"].values, 1.0) - 0.02).abs() < 5e-3);
        assert!(w["deconv1.bias"].values.iter().all(|&b| b == 0.0));
        assert!(w["bn1.running_var"].values.iter().all(|&b| b == 1.0));
        // The same seed gives the same network; another seed does not.
        assert_eq!(export(&cfg.generator.init_seeded(&device, 7)), w);
        assert_ne!(
            export(&cfg.generator.init_seeded(&device, 8))["deconv1.weight"],
            w["deconv1.weight"]
        );
    }

    #[test]
    fn import_rejects_other_architectures() {
        let device = inference_device();
        let plain = GanConfig::original(10, false).discriminator.init(&device);
        let aux = GanConfig::original(10, true).discriminator.init(&device);
        let err = import(plain.clone(), &export(&aux))
            .unwrap_err()
            .to_string();
        assert!(err.contains("aux.weight"), "{err}");
        let err = import(aux, &export(&plain)).unwrap_err().to_string();
        assert!(
            err.contains("aux.weight") && err.contains("missing"),
            "{err}"
        );
        let g = GanConfig::original(10, false).generator.init(&device);
        let err = import(plain, &export(&g)).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
    }
}
