//! Kubernetes resource quantities (`resource.Quantity`), parsed exactly.
//!
//! A quantity is `<signed decimal number><suffix>`, where the suffix is a binary SI
//! suffix (`Ki` … `Ei`), a decimal SI suffix (`n u m "" k M G T P E`) or a decimal
//! exponent (`e3`, `E-2`). The scheduler reads quantities in two ways, and both are
//! provided here with the API machinery's rounding: `value()` (whole units, rounded up)
//! and `milli_value()` (thousandths, rounded up), used for cpu.

use std::fmt;

/// A parsed quantity: `mantissa × 10^-scale × base^exponent`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    /// The digits of the number with the decimal point removed.
    mantissa: i128,
    /// How many of those digits were after the decimal point.
    scale: u32,
    /// The suffix's multiplier.
    multiplier: Multiplier,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Multiplier {
    /// 10^n, n may be negative (m, u, n, e-3).
    Decimal(i32),
    /// 2^n (Ki = 2^10 … Ei = 2^60).
    Binary(u32),
}

/// Why a string is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a valid quantity: {1}")]
pub struct QuantityError(pub String, pub &'static str);

/// The largest magnitude we carry; like the API machinery we saturate at i64.
const SATURATE: i128 = i64::MAX as i128;

impl Quantity {
    /// Parses a quantity string as the API server accepts it.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let err = |why| QuantityError(text.to_string(), why);
        let s = text.trim();
        if s.is_empty() {
            return Err(err("empty string"));
        }
        let (negative, body) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let number_end = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (number, suffix) = body.split_at(number_end);
        if number.is_empty() || number == "." {
            return Err(err("no digits"));
        }
        let mut mantissa: i128 = 0;
        let mut scale: u32 = 0;
        let mut seen_point = false;
        for c in number.chars() {
            if c == '.' {
                if seen_point {
                    return Err(err("more than one decimal point"));
                }
                seen_point = true;
                continue;
            }
            let digit = i128::from(c as u8 - b'0');
            // Beyond 30 significant digits precision cannot matter for an i64 result.
            if mantissa < 10i128.pow(30) {
                mantissa = mantissa * 10 + digit;
                if seen_point {
                    scale += 1;
                }
            } else if !seen_point {
                return Err(err("number too large"));
            }
        }
        if negative {
            mantissa = -mantissa;
        }
        let multiplier = parse_suffix(suffix).ok_or_else(|| err("unknown suffix"))?;
        Ok(Quantity {
            mantissa,
            scale,
            multiplier,
        })
    }

    /// Below zero (`-1`, `-500m`); zero is not negative.
    pub fn is_negative(&self) -> bool {
        self.mantissa < 0
    }

    /// Whole units, rounded up (away from zero for positive values), as `Quantity.Value()`.
    pub fn value(&self) -> i64 {
        self.scaled(0)
    }

    /// Thousandths of a unit, rounded up, as `Quantity.MilliValue()`.
    pub fn milli_value(&self) -> i64 {
        self.scaled(3)
    }

    /// `self × 10^extra`, rounded towards +infinity, saturated to i64.
    fn scaled(&self, extra: u32) -> i64 {
        // value = mantissa * mult / 10^scale * 10^extra
        let mut numerator = self.mantissa;
        let mut denominator: i128 = 1;
        let mut pow10 = i64::from(extra) - i64::from(self.scale);
        match self.multiplier {
            Multiplier::Decimal(e) => pow10 += i64::from(e),
            Multiplier::Binary(e) => numerator = saturating_mul(numerator, 1i128 << e),
        }
        if pow10 >= 0 {
            for _ in 0..pow10 {
                numerator = saturating_mul(numerator, 10);
            }
        } else {
            for _ in 0..(-pow10).min(38) {
                denominator *= 10;
            }
            if -pow10 > 38 {
                return if numerator > 0 { 1 } else { 0 };
            }
        }
        let quotient = numerator.div_euclid(denominator);
        let rounded = if numerator.rem_euclid(denominator) != 0 {
            quotient + 1
        } else {
            quotient
        };
        rounded.clamp(-SATURATE - 1, SATURATE) as i64
    }

    /// True when the quantity is zero.
    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }
}

fn saturating_mul(a: i128, b: i128) -> i128 {
    a.checked_mul(b).unwrap_or(if (a < 0) ^ (b < 0) {
        -SATURATE * 16
    } else {
        SATURATE * 16
    })
}

fn parse_suffix(suffix: &str) -> Option<Multiplier> {
    use Multiplier::*;
    Some(match suffix {
        "" => Decimal(0),
        "n" => Decimal(-9),
        "u" => Decimal(-6),
        "m" => Decimal(-3),
        "k" => Decimal(3),
        "M" => Decimal(6),
        "G" => Decimal(9),
        "T" => Decimal(12),
        "P" => Decimal(15),
        "E" => Decimal(18),
        "Ki" => Binary(10),
        "Mi" => Binary(20),
        "Gi" => Binary(30),
        "Ti" => Binary(40),
        "Pi" => Binary(50),
        "Ei" => Binary(60),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let e: i32 = exponent.parse().ok()?;
            if !(-100..=100).contains(&e) {
                return None;
            }
            Decimal(e)
        }
    })
}

impl fmt::Debug for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Quantity({}m)", self.milli_value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn decimal_and_binary_suffixes() {
        assert_eq!(q("1").milli_value(), 1000);
        assert_eq!(q("250m").milli_value(), 250);
        assert_eq!(q("0.5").milli_value(), 500);
        assert_eq!(q("1.5k").value(), 1500);
        assert_eq!(q("1Ki").value(), 1024);
        assert_eq!(q("8Gi").value(), 8 * 1024 * 1024 * 1024);
        assert_eq!(q("1Ei").value(), 1 << 60);
        assert_eq!(q("2M").value(), 2_000_000);
        assert_eq!(q("1e3").value(), 1000);
        assert_eq!(q("1E-3").milli_value(), 1);
        assert_eq!(q("+5").value(), 5);
    }

    #[test]
    fn rounds_up_like_the_api_machinery() {
        // 0.1m cpu is 1 millicore after rounding up.
        assert_eq!(q("0.1m").milli_value(), 1);
        assert_eq!(q("100u").milli_value(), 1);
        assert_eq!(q("1n").value(), 1);
        assert_eq!(q("1.5").value(), 2);
        assert_eq!(q("0").value(), 0);
        assert_eq!(q("-1.5").value(), -1);
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        assert_eq!(q("100Ei").value(), i64::MAX);
        assert_eq!(q("9E").milli_value(), i64::MAX);
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "abc", "1.2.3", "1Xi", "1e", "m", "1 Gi", "--1"] {
            assert!(Quantity::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
