//! Constructors: `zeros`, `ones`, `full`, `arange`, `linspace`, `eye`, `rand`, `randn`,
//! `randint` and the `*_like` forms. Each returns a leaf that does not require grad; the
//! caller applies `requires_grad=` with [`Tensor::requires_grad_`].

use super::core::Tensor;
use super::error::{Result, TensorError};
use super::random;
use super::storage::{self, alloc_filled};

impl Tensor {
    /// `full(shape, value)`. E0503 when the shape is absurdly large.
    pub fn full(shape: &[usize], value: f64) -> Result<Tensor> {
        Ok(Tensor::from_data(
            alloc_filled("full", shape, value as f32)?,
            shape,
        ))
    }

    /// `zeros(shape)`.
    pub fn zeros(shape: &[usize]) -> Result<Tensor> {
        Tensor::full(shape, 0.0)
    }

    /// `ones(shape)`.
    pub fn ones(shape: &[usize]) -> Result<Tensor> {
        Tensor::full(shape, 1.0)
    }

    /// `zeros_like(t)`.
    pub fn zeros_like(&self) -> Result<Tensor> {
        Tensor::zeros(self.shape())
    }

    /// `ones_like(t)`.
    pub fn ones_like(&self) -> Result<Tensor> {
        Tensor::ones(self.shape())
    }

    /// `randn_like(t)`.
    pub fn randn_like(&self) -> Result<Tensor> {
        Tensor::randn(self.shape())
    }

    /// `arange(start, end, step)`: `start, start + step, ...` up to (not including) `end`.
    /// E0505 for a zero step or one that points away from `end`.
    pub fn arange(start: f64, end: f64, step: f64) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
            return Err(TensorError::value(
                "arange",
                format!("invalid range {start}..{end} with step {step}"),
            ));
        }
        if (step > 0.0 && end < start) || (step < 0.0 && end > start) {
            return Err(TensorError::value(
                "arange",
                format!("step {step} points away from the end: {start}..{end}"),
            ));
        }
        let count = ((end - start) / step).ceil().max(0.0);
        let size = count.min(usize::MAX as f64) as usize;
        let mut values = storage::alloc("arange", &[size])?;
        values.extend((0..size).map(|i| (start + i as f64 * step) as f32));
        Ok(Tensor::from_data(values, &[size]))
    }

    /// `linspace(start, end, steps)`: `steps` evenly spaced values from `start` to `end`
    /// inclusive, computed from both ends as PyTorch does so the last one is exactly `end`.
    pub fn linspace(start: f64, end: f64, steps: usize) -> Result<Tensor> {
        let mut values = storage::alloc("linspace", &[steps])?;
        let step = if steps > 1 {
            (end - start) / (steps - 1) as f64
        } else {
            0.0
        };
        let half = steps / 2;
        values.extend((0..steps).map(|i| {
            if i < half {
                (start + step * i as f64) as f32
            } else {
                (end - step * (steps - 1 - i) as f64) as f32
            }
        }));
        Ok(Tensor::from_data(values, &[steps]))
    }

    /// `eye(n, m)`: ones on the main diagonal of an `n × m` matrix.
    pub fn eye(n: usize, m: usize) -> Result<Tensor> {
        let mut data = alloc_filled("eye", &[n, m], 0.0)?;
        for i in 0..n.min(m) {
            data[i * m + i] = 1.0;
        }
        Ok(Tensor::from_data(data, &[n, m]))
    }

    /// `rand(shape)`: uniform draws in `[0, 1)`.
    pub fn rand(shape: &[usize]) -> Result<Tensor> {
        let mut data = alloc_filled("rand", shape, 0.0)?;
        random::fill_uniform(&mut data, 0.0, 1.0);
        Ok(Tensor::from_data(data, shape))
    }

    /// `randn(shape)`: standard normal draws.
    pub fn randn(shape: &[usize]) -> Result<Tensor> {
        let mut data = alloc_filled("randn", shape, 0.0)?;
        random::fill_normal(&mut data, 0.0, 1.0);
        Ok(Tensor::from_data(data, shape))
    }

    /// `randint(low, high, shape)`: integers uniform in `[low, high)`, as floats. E0505
    /// unless `low < high`.
    pub fn randint(low: i64, high: i64, shape: &[usize]) -> Result<Tensor> {
        if low >= high {
            return Err(TensorError::value(
                "randint",
                format!("low ({low}) must be less than high ({high})"),
            ));
        }
        let mut data = alloc_filled("randint", shape, 0.0)?;
        random::fill_randint(&mut data, low, high);
        Ok(Tensor::from_data(data, shape))
    }
}
