//! Which records a command wants: CPUs, kinds, a time window.

use tracemark_format::Kind;

use crate::merge::Item;

/// A point in time on the command line: `12.5` or `12.5s` (seconds, converted with each
/// ring's clock frequency), or `123456t` (clock ticks). A plain integer is seconds too,
/// except on a ring whose clock frequency is unknown, where it is ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeSpec {
    /// Seconds since the clock's zero.
    Seconds(f64),
    /// Raw ticks.
    Ticks(u64),
}

impl std::str::FromStr for TimeSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(t) = s.strip_suffix("ticks").or_else(|| s.strip_suffix('t')) {
            return t
                .trim()
                .parse()
                .map(TimeSpec::Ticks)
                .map_err(|_| format!("{s:?} is not a tick count"));
        }
        let t = s.strip_suffix('s').unwrap_or(s);
        match t.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(TimeSpec::Seconds(v)),
            _ => Err(format!(
                "{s:?} is not a time (seconds like 12.5 or 12.5s, or ticks like 1000t)"
            )),
        }
    }
}

impl TimeSpec {
    /// This time in ticks of a `clock_hz` clock (saturating).
    pub fn ticks(self, clock_hz: u64) -> u64 {
        match self {
            TimeSpec::Ticks(t) => t,
            TimeSpec::Seconds(s) if clock_hz == 0 => s as u64,
            TimeSpec::Seconds(s) => {
                let whole = s.trunc();
                let frac = s - whole;
                (whole as u64)
                    .saturating_mul(clock_hz)
                    .saturating_add((frac * clock_hz as f64).round() as u64)
            }
        }
    }
}

/// A selection of records.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only these CPUs (empty: all).
    pub cpus: Vec<u32>,
    /// Only these kinds (empty: all).
    pub kinds: Vec<Kind>,
    /// Not before this time.
    pub from: Option<TimeSpec>,
    /// Not after this time.
    pub to: Option<TimeSpec>,
}

/// A [`Filter`] resolved for one ring's clock.
#[derive(Debug, Clone, Copy)]
pub struct RingFilter {
    /// Bit `k` set: kind code `k` wanted.
    pub kinds: u16,
    /// First tick wanted.
    pub from: u64,
    /// Last tick wanted.
    pub to: u64,
}

/// A [`Filter`] that cannot select anything in a dump: said, rather than printing
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// `--cpu` names a CPU no ring of the dump records.
    #[error(
        "--cpu {cpu}: the dump has no ring of CPU {cpu} (its CPUs: {present}); nothing to select"
    )]
    NoSuchCpu {
        /// The CPU asked for.
        cpu: u32,
        /// The CPUs the dump holds, comma-separated.
        present: String,
    },
    /// `--from` is after `--to`.
    #[error(
        "--from is after --to ({from} > {to} ticks on cpu{cpu}'s clock): the time window is empty"
    )]
    EmptyWindow {
        /// `--from` in ticks.
        from: u64,
        /// `--to` in ticks.
        to: u64,
        /// The CPU whose clock converted them.
        cpu: u32,
    },
}

impl Filter {
    /// Checks that the filter can select something from rings of these `(cpu, clock_hz)`:
    /// every `--cpu` names a CPU of the dump, and the time window is not empty.
    pub fn check(&self, rings: &[(u32, u64)]) -> Result<(), FilterError> {
        for &cpu in &self.cpus {
            if !rings.iter().any(|&(c, _)| c == cpu) {
                let mut present: Vec<u32> = rings.iter().map(|&(c, _)| c).collect();
                present.sort_unstable();
                present.dedup();
                let present: Vec<String> = present.iter().map(u32::to_string).collect();
                return Err(FilterError::NoSuchCpu {
                    cpu,
                    present: present.join(", "),
                });
            }
        }
        for &(cpu, hz) in rings.iter().filter(|&&(c, _)| self.wants_cpu(c)) {
            let f = self.for_ring(hz);
            if f.from > f.to {
                return Err(FilterError::EmptyWindow {
                    from: f.from,
                    to: f.to,
                    cpu,
                });
            }
        }
        Ok(())
    }

    /// Whether ring of CPU `cpu` is wanted at all.
    pub fn wants_cpu(&self, cpu: u32) -> bool {
        self.cpus.is_empty() || self.cpus.contains(&cpu)
    }

    /// The filter for a ring with clock `clock_hz`.
    pub fn for_ring(&self, clock_hz: u64) -> RingFilter {
        let kinds = if self.kinds.is_empty() {
            u16::MAX
        } else {
            self.kinds.iter().fold(0u16, |m, k| m | 1 << (*k as u8))
        };
        RingFilter {
            kinds,
            from: self.from.map_or(0, |t| t.ticks(clock_hz)),
            to: self.to.map_or(u64::MAX, |t| t.ticks(clock_hz)),
        }
    }
}

impl RingFilter {
    /// Whether `item` is wanted.
    #[inline]
    pub fn wants(&self, item: &Item) -> bool {
        self.kinds & (1 << (item.event.kind() as u8)) != 0
            && item.ts >= self.from
            && item.ts <= self.to
    }
}

/// A comma-separated list of kinds on the command line (`KENTRY,irq`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kinds(pub Vec<Kind>);

/// Parses a comma-separated list of kind names (`KENTRY,irq`).
pub fn parse_kinds(s: &str) -> Result<Kinds, String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            Kind::from_name(p.trim()).ok_or_else(|| {
                let names: Vec<_> = Kind::EVENTS.iter().map(|k| k.name()).collect();
                format!("unknown kind {p:?} (kinds: {})", names.join(", "))
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        assert_eq!("12.5".parse::<TimeSpec>(), Ok(TimeSpec::Seconds(12.5)));
        assert_eq!("100t".parse::<TimeSpec>(), Ok(TimeSpec::Ticks(100)));
        assert!("x".parse::<TimeSpec>().is_err());
        assert_eq!(TimeSpec::Seconds(1.5).ticks(1_000_000), 1_500_000);
        assert_eq!(TimeSpec::Seconds(7.0).ticks(0), 7);
    }

    #[test]
    fn empty_selections_are_named() {
        let rings = [(0, 1_000_000), (1, 1_000_000)];
        assert_eq!(Filter::default().check(&rings), Ok(()));
        let cpu = Filter {
            cpus: vec![1, 99],
            ..Filter::default()
        };
        assert_eq!(
            cpu.check(&rings),
            Err(FilterError::NoSuchCpu {
                cpu: 99,
                present: "0, 1".into()
            })
        );
        let window = Filter {
            from: Some(TimeSpec::Seconds(10.0)),
            to: Some(TimeSpec::Seconds(5.0)),
            ..Filter::default()
        };
        assert!(matches!(
            window.check(&rings),
            Err(FilterError::EmptyWindow { cpu: 0, .. })
        ));
        let point = Filter {
            from: Some(TimeSpec::Ticks(5)),
            to: Some(TimeSpec::Ticks(5)),
            ..Filter::default()
        };
        assert_eq!(point.check(&rings), Ok(()));
    }
}
