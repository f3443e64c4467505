//! Receptive fields (LANGUAGE.md §11): for each output pixel of a layer stack, the window of
//! input pixels it can depend on, one spatial axis at a time. The single source of the
//! formulas: the checker carries an [`AxisField`] per spatial axis in its tensor types and
//! the run-time `summary` / `receptive_field` read the same numbers.
//!
//! An axis is described as the torch receptive-field tools do: output pixel `o` depends on
//! the input pixels centred on `start + o*jump`, `size` of them (spaced by one input pixel).
//! A transposed convolution divides the jump, so `jump` and `start` are [`Rational`].

use std::fmt;

/// An exact fraction `num / den` with `den > 0`, kept in lowest terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rational {
    num: i64,
    den: i64,
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    // Both inputs fit i64, so their gcd does too (except gcd(MIN, 0), clamped).
    i64::try_from(a).unwrap_or(i64::MAX)
}

impl Rational {
    /// The integer `n`.
    pub const fn int(n: i64) -> Rational {
        Rational { num: n, den: 1 }
    }

    /// `num / den`, reduced; `None` when `den` is zero or the reduction overflows.
    pub fn new(num: i64, den: i64) -> Option<Rational> {
        if den == 0 {
            return None;
        }
        let g = gcd(num, den).max(1);
        let (mut n, mut d) = (num / g, den / g);
        if d < 0 {
            n = n.checked_neg()?;
            d = d.checked_neg()?;
        }
        Some(Rational { num: n, den: d })
    }

    /// The numerator (in lowest terms, carrying the sign).
    pub fn numer(self) -> i64 {
        self.num
    }

    /// The denominator (positive).
    pub fn denom(self) -> i64 {
        self.den
    }

    /// As a float (for display and for the run-time records).
    pub fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// The value when it is an integer.
    pub fn as_int(self) -> Option<i64> {
        (self.den == 1).then_some(self.num)
    }

    /// `self + other`, `None` on overflow.
    pub fn checked_add(self, other: Rational) -> Option<Rational> {
        let num = self
            .num
            .checked_mul(other.den)?
            .checked_add(other.num.checked_mul(self.den)?)?;
        Rational::new(num, self.den.checked_mul(other.den)?)
    }

    /// `self - other`, `None` on overflow.
    pub fn checked_sub(self, other: Rational) -> Option<Rational> {
        self.checked_add(Rational::new(other.num.checked_neg()?, other.den)?)
    }

    /// `self * other`, `None` on overflow.
    pub fn checked_mul(self, other: Rational) -> Option<Rational> {
        Rational::new(
            self.num.checked_mul(other.num)?,
            self.den.checked_mul(other.den)?,
        )
    }

    /// `self / other`, `None` on overflow or division by zero.
    pub fn checked_div(self, other: Rational) -> Option<Rational> {
        Rational::new(
            self.num.checked_mul(other.den)?,
            self.den.checked_mul(other.num)?,
        )
    }
}

impl PartialOrd for Rational {
    fn partial_cmp(&self, other: &Rational) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Rational {
    fn cmp(&self, other: &Rational) -> std::cmp::Ordering {
        // Denominators are positive, so cross-multiplying keeps the order; i128 cannot
        // overflow for i64 operands.
        (i128::from(self.num) * i128::from(other.den))
            .cmp(&(i128::from(other.num) * i128::from(self.den)))
    }
}

impl fmt::Display for Rational {
    /// Integers as `4`, halves and other fractions with a finite decimal as `0.5`, the rest
    /// as `1/3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            return write!(f, "{}", self.num);
        }
        let mut d = self.den;
        while d % 2 == 0 {
            d /= 2;
        }
        while d % 5 == 0 {
            d /= 5;
        }
        if d == 1 {
            write!(f, "{}", self.to_f64())
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

/// `r` rounded up, for `r >= 0`. After a transposed convolution the jump is a fraction of
/// an input pixel, and a window whose pixels' centres span a distance `D` reaches at most
/// `ceil(D)` more input pixels than one of them does: sizes are then that upper bound, met
/// by some output pixel (exact whenever the jump is whole).
fn ceil(r: Rational) -> Option<i64> {
    r.numer()
        .checked_add(r.denom() - 1)
        .map(|n| n.div_euclid(r.denom()))
}

/// The receptive field along one spatial axis: output pixel `o` sees `size` input pixels
/// centred on `start + o*jump` (in input pixels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AxisField {
    /// How many input pixels one output pixel can depend on (the window's extent).
    pub size: i64,
    /// The distance, in input pixels, between neighbouring output pixels' windows (the
    /// effective stride).
    pub jump: Rational,
    /// The centre of output pixel 0's window, in input pixel coordinates.
    pub start: Rational,
}

impl AxisField {
    /// The field of a net's input: each pixel sees itself.
    pub const IDENTITY: AxisField = AxisField {
        size: 1,
        jump: Rational::int(1),
        start: Rational::int(0),
    };

    /// After a convolution or pooling window (kernel `k`, stride `s`, padding `p`,
    /// dilation `d`): `size + d*(k-1)*jump`, `jump*s`, `start + (d*(k-1)/2 - p)*jump`.
    /// `None` on overflow or a non-positive stride.
    pub fn window(self, k: i64, s: i64, p: i64, d: i64) -> Option<AxisField> {
        if s <= 0 || k <= 0 || d <= 0 {
            return None;
        }
        let span = d.checked_mul(k - 1)?;
        let grow = self.jump.checked_mul(Rational::int(span))?;
        let size = self.size.checked_add(ceil(grow)?)?;
        let shift = Rational::new(span, 2)?.checked_sub(Rational::int(p))?;
        Some(AxisField {
            size,
            jump: self.jump.checked_mul(Rational::int(s))?,
            start: self.start.checked_add(shift.checked_mul(self.jump)?)?,
        })
    }

    /// After a transposed convolution (kernel `k`, stride `s`, padding `p`, dilation `d`):
    /// an output pixel receives from at most `ceil((d*(k-1) + 1)/s)` input pixels, so the
    /// size grows by `(that - 1)*jump`; the jump is divided by `s`; output pixel 0 sits at
    /// input position `(p - d*(k-1)/2)/s`. (`output_padding` only adds pixels at the end.)
    pub fn transposed(self, k: i64, s: i64, p: i64, d: i64) -> Option<AxisField> {
        if s <= 0 || k <= 0 || d <= 0 {
            return None;
        }
        let span = d.checked_mul(k - 1)?;
        let seen = (span.checked_add(1)? + s - 1) / s;
        let grow = self.jump.checked_mul(Rational::int(seen - 1))?;
        let size = self.size.checked_add(ceil(grow)?)?;
        let centre = Rational::int(p)
            .checked_sub(Rational::new(span, 2)?)?
            .checked_div(Rational::int(s))?;
        Some(AxisField {
            size,
            jump: self.jump.checked_div(Rational::int(s))?,
            start: self.start.checked_add(centre.checked_mul(self.jump)?)?,
        })
    }

    /// After an integer upsampling by `r` (nearest: `Upsample(scale_factor=r)`,
    /// `PixelShuffle(r)`): the size is kept, the jump divided by `r`, and output pixel 0's
    /// centre moves to input position `(1/r - 1)/2` (as for PyTorch's `align_corners=false`).
    pub fn upsampled(self, r: i64) -> Option<AxisField> {
        if r <= 0 {
            return None;
        }
        let shift = Rational::new(1, r)?
            .checked_sub(Rational::int(1))?
            .checked_div(Rational::int(2))?;
        Some(AxisField {
            size: self.size,
            jump: self.jump.checked_div(Rational::int(r))?,
            start: self.start.checked_add(shift.checked_mul(self.jump)?)?,
        })
    }

    /// Two branches joined pixel by pixel (`a + b`, `cat`): the union of both windows.
    ///
    /// With equal jumps the windows move together and the union is exact: from the lower
    /// of the two first pixels to the higher of the two last ones. With different jumps the
    /// two windows drift apart as the output index grows, so no fixed size bounds their
    /// union: the answer is `None` (unknown), never a size that is too small.
    pub fn merge(self, other: AxisField) -> Option<AxisField> {
        if self == other {
            return Some(self);
        }
        if self.jump != other.jump {
            return None;
        }
        // Window of `f`: centre `start`, extent `size` pixels spaced by one input pixel.
        let half = |f: AxisField| Rational::new(f.size - 1, 2);
        let lo = |f: AxisField| f.start.checked_sub(half(f)?);
        let hi = |f: AxisField| f.start.checked_add(half(f)?);
        let low = lo(self)?.min(lo(other)?);
        let high = hi(self)?.max(hi(other)?);
        let size = high.checked_sub(low)?.checked_add(Rational::int(1))?;
        Some(AxisField {
            // Centres a whole number of pixels apart keep an integral extent; otherwise
            // round up so the window still covers both.
            size: size.numer().checked_add(size.denom() - 1)? / size.denom(),
            jump: self.jump,
            start: low.checked_add(high)?.checked_div(Rational::int(2))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: i64, d: i64) -> Rational {
        Rational::new(n, d).unwrap()
    }

    #[test]
    fn a_chain_of_windows_follows_the_recursion() {
        // conv3, conv3 stride 2, avgpool 2, conv3 dilation 2: 23 pixels, jump 4.
        let f = AxisField::IDENTITY
            .window(3, 1, 0, 1)
            .and_then(|f| f.window(3, 2, 0, 1))
            .and_then(|f| f.window(2, 2, 0, 1))
            .and_then(|f| f.window(3, 1, 0, 2))
            .unwrap();
        assert_eq!(f.size, 23);
        assert_eq!(f.jump, Rational::int(4));
        // Output pixel 0 of the valid chain is centred on input pixel 11.
        assert_eq!(f.start, Rational::int(11));
    }

    #[test]
    fn padding_moves_the_start_not_the_size() {
        let f = AxisField::IDENTITY.window(3, 1, 1, 1).unwrap();
        assert_eq!((f.size, f.start), (3, Rational::int(0)));
        let even = AxisField::IDENTITY.window(2, 2, 0, 1).unwrap();
        assert_eq!(even.start, r(1, 2));
    }

    #[test]
    fn a_transposed_convolution_divides_the_jump() {
        let f = AxisField::IDENTITY
            .window(3, 1, 1, 1)
            .and_then(|f| f.transposed(4, 2, 1, 1))
            .unwrap();
        assert_eq!(f.size, 4);
        assert_eq!(f.jump, r(1, 2));
        assert_eq!(f.jump.to_string(), "0.5");
        // out 0 of ConvT(k=4, s=2, p=1) takes inputs i with 2i - 1 + kk = 0: i in {0, -1}.
        assert_eq!(f.start, r(-1, 4));
    }

    #[test]
    fn merging_equal_jumps_takes_the_union() {
        let a = AxisField::IDENTITY;
        let b = AxisField::IDENTITY.window(3, 1, 0, 1).unwrap();
        let m = a.merge(b).unwrap();
        // Identity at 0 and a 3-window centred on 1: pixels 0..=2.
        assert_eq!((m.size, m.start), (3, Rational::int(1)));
        let c = AxisField::IDENTITY.window(2, 2, 0, 1).unwrap();
        assert_eq!(a.merge(c), None);
    }

    #[test]
    fn rationals_print_as_users_read_them() {
        assert_eq!(r(3, 1).to_string(), "3");
        assert_eq!(r(1, 4).to_string(), "0.25");
        assert_eq!(r(1, 3).to_string(), "1/3");
        assert_eq!(r(2, -4), r(-1, 2));
        assert!(r(1, 3) < r(1, 2));
    }
}
