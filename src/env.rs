//! The kernel's time (`Time`, an input: the kernel reads no clock) and randomness (`Entropy`).
//!
//! Invariant: the kernel's time moves only as `KernelClock` says (a simulated jump, charged
//! run time, or a driver's reading) and randomness comes only from `Entropy`; clippy's
//! `disallowed-methods` (clippy.toml) keeps the wall clock and OS randomness out of the crate.
//! The production node reads its real clock itself and gives the kernel the reading.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Nanoseconds since the clock's epoch (the node's start in production, zero in simulation).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Nanoseconds per second.
    pub const NANOS_PER_SECOND: u64 = 1_000_000_000;
    /// Nanoseconds per millisecond.
    pub const NANOS_PER_MILLI: u64 = 1_000_000;

    /// This instant plus `seconds`, saturating.
    #[must_use]
    pub fn plus_seconds(self, seconds: u64) -> Self {
        Self(
            self.0
                .saturating_add(seconds.saturating_mul(Self::NANOS_PER_SECOND)),
        )
    }

    /// This instant plus `millis`, saturating.
    #[must_use]
    pub fn plus_millis(self, millis: u64) -> Self {
        Self(
            self.0
                .saturating_add(millis.saturating_mul(Self::NANOS_PER_MILLI)),
        )
    }

    /// Nanoseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn nanos_since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0 / Self::NANOS_PER_SECOND;
        let nanos = self.0 % Self::NANOS_PER_SECOND;
        write!(f, "{seconds}.{nanos:09}s")
    }
}

/// How the kernel's time moves.
///
/// The kernel reads no clock: time is an input. A simulated kernel moves its own time (it
/// jumps to the next timer when nothing is ready, and busy processes charge the time they
/// burn); a driven kernel's time moves only when its driver gives it a clock reading
/// (`Input::Time`), as the production node does before every step from its real clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Time {
    /// Simulated time starting at this instant.
    Simulated(Timestamp),
    /// Driven time starting at this instant.
    Driven(Timestamp),
}

/// The kernel's time: the instant its work runs at, and how it may move.
///
/// Invariant: `now` never goes backwards.
#[derive(Clone, Debug)]
pub(crate) struct KernelClock {
    now: Timestamp,
    simulated: bool,
}

impl KernelClock {
    pub(crate) fn new(time: Time) -> Self {
        match time {
            Time::Simulated(now) => Self {
                now,
                simulated: true,
            },
            Time::Driven(now) => Self {
                now,
                simulated: false,
            },
        }
    }

    /// The instant work runs at.
    pub(crate) fn now(&self) -> Timestamp {
        self.now
    }

    /// Jumps to `deadline` if time is simulated; returns false for driven time, whose driver
    /// must instead give a reading once `deadline` has passed.
    pub(crate) fn advance_to(&mut self, deadline: Timestamp) -> bool {
        if !self.simulated {
            return false;
        }
        self.now = self.now.max(deadline);
        true
    }

    /// A clock reading from the driver: time moves to `reading`, never back (an earlier
    /// reading is kept out: the kernel's time is monotonic whatever its driver's clock does).
    pub(crate) fn read(&mut self, reading: Timestamp) {
        let before = self.now;
        self.now = self.now.max(reading);
        debug_assert!(self.now >= before, "the kernel clock went back");
    }
}

/// The kernel's named sub-streams of the root seed. Adding draws to one stream never shifts
/// another. A driver (the simulator) draws its own streams from the same seed with
/// [`Entropy::driver_stream`], under ids none of these use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u64)]
pub enum Stream {
    /// Which ready piece of work runs next.
    Scheduler = 1,
    /// Message ids.
    Ids = 2,
    /// The kernel's signing key when none is configured.
    Keys = 3,
    /// Names of spawned processes.
    Names = 6,
}

impl Stream {
    /// Every stream the kernel draws from.
    pub const ALL: [Stream; 4] = [Self::Scheduler, Self::Ids, Self::Keys, Self::Names];
}

/// Seeded randomness: one ChaCha8 generator per [`Stream`], all from one seed.
#[derive(Clone, Debug)]
pub struct Entropy {
    seed: u64,
    scheduler: ChaCha8Rng,
    ids: ChaCha8Rng,
    names: ChaCha8Rng,
}

impl Entropy {
    /// All streams from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            scheduler: Self::stream(seed, Stream::Scheduler),
            ids: Self::stream(seed, Stream::Ids),
            names: Self::stream(seed, Stream::Names),
        }
    }

    /// A fresh generator for the kernel's `stream`.
    pub fn stream(seed: u64, stream: Stream) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream as u64);
        rng
    }

    /// A generator for a driver's own stream `id` of `seed` (a simulator's faults, workload,
    /// network, disk).
    ///
    /// # Panics
    /// `id` is one of the kernel's own [`Stream`]s: a driver drawing from it would shift the
    /// kernel's draws.
    pub fn driver_stream(seed: u64, id: u64) -> ChaCha8Rng {
        assert!(
            Stream::ALL.iter().all(|s| *s as u64 != id),
            "stream {id} is the kernel's own"
        );
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(id);
        debug_assert_eq!(rng.get_stream(), id, "the stream id did not take");
        rng
    }

    /// The root seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A uniform index below `len` from the scheduler stream (`len` must be non-zero).
    pub fn pick(&mut self, len: usize) -> usize {
        assert!(len > 0, "pick from an empty set");
        let len = len as u64;
        // Rejection sampling keeps the choice unbiased.
        let zone = u64::MAX - (u64::MAX % len);
        loop {
            let draw = self.scheduler.next_u64();
            if draw < zone {
                return usize::try_from(draw % len).unwrap_or(0);
            }
        }
    }

    /// A message id from the ids stream.
    pub fn next_id(&mut self) -> u64 {
        self.ids.next_u64()
    }

    /// A name from the names stream.
    pub fn next_name(&mut self) -> u64 {
        self.names.next_u64()
    }

    /// 32 bytes for a signing key from the keys stream.
    pub fn key_bytes(seed: u64) -> [u8; 32] {
        let mut rng = Self::stream(seed, Stream::Keys);
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_independent_and_reproducible() {
        let mut a = Entropy::new(7);
        let mut b = Entropy::new(7);
        let first_id = a.next_id();
        assert_eq!(first_id, b.next_id());
        // Drawing from the scheduler of `a` does not shift its ids stream.
        let _ = a.pick(10);
        assert_eq!(a.next_id(), b.next_id());
        assert_ne!(Entropy::new(8).next_id(), first_id);
    }

    #[test]
    fn pick_stays_in_range() {
        let mut entropy = Entropy::new(1);
        for len in 1..50 {
            assert!(entropy.pick(len) < len);
        }
    }

    #[test]
    fn the_kernel_clock_never_goes_backwards() {
        let mut clock = KernelClock::new(Time::Simulated(Timestamp(0)));
        assert!(clock.advance_to(Timestamp(10)));
        assert!(clock.advance_to(Timestamp(5)));
        assert_eq!(clock.now(), Timestamp(10));
        let mut driven = KernelClock::new(Time::Driven(Timestamp(3)));
        assert!(
            !driven.advance_to(Timestamp(10)),
            "driven time waits for a reading"
        );
        assert_eq!(driven.now(), Timestamp(3));
        driven.read(Timestamp(8));
        driven.read(Timestamp(4));
        assert_eq!(driven.now(), Timestamp(8));
    }
}
