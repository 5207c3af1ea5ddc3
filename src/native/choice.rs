//! `--precision auto`: each product shape in the arithmetic measured
//! fastest for it on this machine.
//!
//! The shapes a step (or a generator pass) runs are recorded once, on a
//! throwaway pass, before anything is learned; each shape not timed before is
//! timed in isolation, fp32 against bf16, and the winner kept in a table
//! cached per CPU and thread count (`~/.cache/cdcgan/products/`). A shape
//! keeps its choice for good on one machine, so two `auto` runs with one seed
//! learn the same tensors. Without AVX512_BF16 every shape is fp32, bit for
//! bit as `--precision fp32`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::gemm::{Operand, Precision, Threads, product, with_precision};

/// One product as a step runs it: the key of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shape {
    /// Output rows.
    pub m: usize,
    /// Output columns.
    pub n: usize,
    /// The inner dimension.
    pub k: usize,
    /// Whether the left operand is read transposed.
    pub lhs_t: bool,
    /// Whether the right operand is read transposed.
    pub rhs_t: bool,
    /// Whether it runs on every compute thread.
    pub parallel: bool,
}

impl Shape {
    /// The shape as the cache file names it: `m x n x k`, `t` for a
    /// transposed operand, `p` for parallel, e.g. `25x512x576-tn-p`.
    fn key(&self) -> String {
        let t = |on: bool| if on { 't' } else { 'n' };
        let p = if self.parallel { "p" } else { "1" };
        format!(
            "{}x{}x{}-{}{}-{p}",
            self.m,
            self.n,
            self.k,
            t(self.lhs_t),
            t(self.rhs_t)
        )
    }
}

/// The choices in force in this process.
static TABLE: RwLock<Option<HashMap<Shape, Precision>>> = RwLock::new(None);
/// Set while a throwaway pass records its shapes.
static RECORDING: AtomicBool = AtomicBool::new(false);
static RECORDED: Mutex<Option<HashSet<Shape>>> = Mutex::new(None);

/// Whether `shape` runs in bf16 under `auto` (shapes never timed: fp32).
pub fn bf16_chosen(shape: Shape) -> bool {
    if RECORDING.load(Ordering::Relaxed) {
        let mut recorded = RECORDED.lock().unwrap_or_else(|e| e.into_inner());
        recorded.get_or_insert_with(HashSet::new).insert(shape);
        return false;
    }
    let table = TABLE.read().unwrap_or_else(|e| e.into_inner());
    table
        .as_ref()
        .and_then(|t| t.get(&shape))
        .is_some_and(|&p| p == Precision::Bf16)
}

/// The products `work` runs, with every product in fp32.
fn record(work: impl FnOnce()) -> Vec<Shape> {
    /// Ends the recording however `work` ends, a panic included.
    struct Recording;
    impl Drop for Recording {
        fn drop(&mut self) {
            RECORDING.store(false, Ordering::SeqCst);
        }
    }
    *RECORDED.lock().unwrap_or_else(|e| e.into_inner()) = Some(HashSet::new());
    RECORDING.store(true, Ordering::SeqCst);
    let recording = Recording;
    work();
    drop(recording);
    let recorded = RECORDED.lock().unwrap_or_else(|e| e.into_inner()).take();
    let mut shapes: Vec<Shape> = recorded.unwrap_or_default().into_iter().collect();
    shapes.sort();
    shapes
}

/// One shape timed both ways: seconds per product, the best of a few
/// alternating rounds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Seconds in fp32.
    pub fp32_s: f64,
    /// Seconds in bf16 (infinite where it does not run).
    pub bf16_s: f64,
}

impl Timing {
    fn winner(&self) -> Precision {
        match self.bf16_s < self.fp32_s {
            true => Precision::Bf16,
            false => Precision::Fp32,
        }
    }
}

/// Times `shape` in fp32 and in bf16 on operands of its size.
fn time(shape: Shape) -> Timing {
    let (m, n, k) = (shape.m, shape.n, shape.k);
    let a: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.1 - 0.6).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 11) as f32 * 0.1 - 0.5).collect();
    let lhs = match shape.lhs_t {
        true => Operand::new(&a, k, m).t(),
        false => Operand::new(&a, m, k),
    };
    let rhs = match shape.rhs_t {
        true => Operand::new(&b, n, k).t(),
        false => Operand::new(&b, k, n),
    };
    let threads = if shape.parallel {
        Threads::All
    } else {
        Threads::This
    };
    // Enough repeats for about a millisecond per measurement.
    let reps = (1_000_000 / (m * n * k).max(1)).clamp(1, 200);
    let run = |precision| {
        let started = Instant::now();
        for _ in 0..reps {
            std::hint::black_box(with_precision(precision, || product(lhs, rhs, threads)));
        }
        started.elapsed().as_secs_f64() / reps as f64
    };
    let (mut fp32_s, mut bf16_s) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..5 {
        fp32_s = fp32_s.min(run(Precision::Fp32));
        bf16_s = bf16_s.min(run(Precision::Bf16));
    }
    Timing { fp32_s, bf16_s }
}

/// The cache of timings on this machine.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    /// What it was measured on.
    cpu: String,
    threads: usize,
    /// Each shape's timing, by [`Shape::key`].
    shapes: BTreeMap<String, Timing>,
}

/// This CPU and thread count, as the cache file is named.
fn machine() -> (String, usize) {
    let cpu = crate::backend::cpu_signature();
    (cpu, rayon::current_num_threads())
}

fn cache_path(cpu: &str, threads: usize) -> Option<PathBuf> {
    let home = std::env::var_os("CDCGAN_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/cdcgan")))?;
    let name: String = cpu
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    Some(
        home.join("products")
            .join(format!("{name}-{threads}t.json")),
    )
}

/// What `auto` chose for a set of shapes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Choices {
    /// Each shape with its arithmetic and timing.
    pub shapes: Vec<(Shape, Precision, Timing)>,
}

impl Choices {
    /// One line for the log, config and bench: how many products of each kind.
    pub fn summary(&self) -> String {
        if !super::gemm::bf16_supported() {
            return "every product in fp32: this CPU has no AVX512_BF16 (the same as \
                    --precision fp32)"
                .into();
        }
        let bf16 = self
            .shapes
            .iter()
            .filter(|(_, p, _)| *p == Precision::Bf16)
            .count();
        let saved: f64 = self
            .shapes
            .iter()
            .map(|(_, _, t)| t.fp32_s - t.fp32_s.min(t.bf16_s))
            .sum();
        let all: f64 = self.shapes.iter().map(|(_, _, t)| t.fp32_s).sum();
        // An empty sum is -0.0, which would print as "-0%".
        let share = match saved > 0.0 && all > 0.0 {
            true => 100.0 * saved / all,
            false => 0.0,
        };
        format!(
            "{} of {} product shapes in bf16 (measured on this CPU: {share:.0}% less product \
             time than all-fp32)",
            bf16,
            self.shapes.len(),
        )
    }
}

/// Records the shapes `work` runs (a throwaway pass), times those not in
/// the machine's cache, and puts the choices in force for this process.
/// Without bf16 on this CPU, every choice is fp32 and nothing is timed.
pub fn calibrate(work: impl FnOnce()) -> Choices {
    let shapes = record(work);
    if !super::gemm::bf16_supported() {
        let fp32 = Timing {
            fp32_s: 0.0,
            bf16_s: f64::INFINITY,
        };
        let shapes = shapes
            .into_iter()
            .map(|s| (s, Precision::Fp32, fp32))
            .collect();
        return Choices { shapes };
    }
    let (cpu, threads) = machine();
    let path = cache_path(&cpu, threads);
    let mut cache: Cache = path
        .as_ref()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .filter(|c: &Cache| c.cpu == cpu && c.threads == threads)
        .unwrap_or(Cache {
            cpu,
            threads,
            shapes: BTreeMap::new(),
        });
    let mut timed_now = false;
    let mut choices = Choices::default();
    for shape in shapes {
        let timing = *cache.shapes.entry(shape.key()).or_insert_with(|| {
            timed_now = true;
            time(shape)
        });
        choices.shapes.push((shape, timing.winner(), timing));
    }
    if timed_now && let Some(path) = &path {
        let saved = std::fs::create_dir_all(path.parent().unwrap_or(path))
            .map_err(anyhow::Error::from)
            .and_then(|_| crate::store::write_atomic(path, &serde_json::to_vec_pretty(&cache)?));
        if let Err(e) = saved {
            tracing::warn!(
                "{}: the product timings are not kept ({e:#}); the next run times its shapes again",
                path.display()
            );
        }
    }
    let mut table = TABLE.write().unwrap_or_else(|e| e.into_inner());
    let table = table.get_or_insert_with(HashMap::new);
    for (shape, precision, _) in &choices.shapes {
        table.insert(*shape, *precision);
    }
    choices
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table and the recorder are the process's: one test at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn shapes_are_recorded_and_chosen_per_shape() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let a = vec![0.5f32; 64 * 96];
        let b = vec![0.25f32; 96 * 40];
        let shapes = record(|| {
            let _ = with_precision(Precision::Auto, || {
                product(
                    Operand::new(&a, 64, 96),
                    Operand::new(&b, 96, 40),
                    Threads::This,
                )
            });
        });
        let shape = Shape {
            m: 64,
            n: 40,
            k: 96,
            lhs_t: false,
            rhs_t: false,
            parallel: false,
        };
        assert_eq!(shapes, vec![shape]);
        assert_eq!(shape.key(), "64x40x96-nn-1");
        let faster_bf16 = Timing {
            fp32_s: 2.0,
            bf16_s: 1.0,
        };
        assert_eq!(faster_bf16.winner(), Precision::Bf16);
        assert_eq!(
            Timing {
                fp32_s: 1.0,
                bf16_s: 1.0
            }
            .winner(),
            Precision::Fp32,
            "a tie keeps fp32"
        );
    }

    /// Under auto each product runs exactly as the precision its shape was
    /// given: bit for bit fp32's or bf16's result.
    #[test]
    #[cfg_attr(cdcgan_no_bf16, ignore = "this CPU has no AVX512_BF16")]
    fn auto_runs_each_shape_in_its_chosen_arithmetic() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        crate::native::gemm::expect_bf16();
        let (m, k) = (48, 80);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        for (n, chosen) in [(36, Precision::Bf16), (44, Precision::Fp32)] {
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 17) % 97) as f32 / 48.0 - 1.0)
                .collect();
            let shape = Shape {
                m,
                n,
                k,
                lhs_t: false,
                rhs_t: false,
                parallel: false,
            };
            let mut table = TABLE.write().unwrap();
            table.get_or_insert_with(HashMap::new).insert(shape, chosen);
            drop(table);
            let run = |p| {
                with_precision(p, || {
                    product(
                        Operand::new(&a, m, k),
                        Operand::new(&b, k, n),
                        Threads::This,
                    )
                })
            };
            let (auto, fp32, bf16) = (
                run(Precision::Auto),
                run(Precision::Fp32),
                run(Precision::Bf16),
            );
            assert_ne!(
                fp32, bf16,
                "the two arithmetics should differ on these values"
            );
            let expected = if chosen == Precision::Bf16 {
                &bf16
            } else {
                &fp32
            };
            assert_eq!(&auto, expected, "{n}: auto did not follow its choice");
        }
    }
}
