//! The simulator's own random streams of a seed, beside the kernel's (`hyperkernel::Stream`).
//! Each has its own id, so drawing more from one never shifts another or the kernel's.

use hyperkernel::Entropy;
use rand_chacha::ChaCha8Rng;

/// A stream the simulator draws from (the ids were the kernel's once and keep their numbers,
/// so every seed draws what it drew before the faults left the kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u64)]
pub enum SimStream {
    /// Faults inside a kernel: holds, traps, timer skew (`inside.rs`).
    Faults = 4,
    /// Workload generation.
    Workload = 5,
    /// Per-seed fault probabilities and harness-side faults such as crashes.
    Swarm = 7,
    /// A one-node scenario's simulated network: latencies, drops and duplicates.
    Network = 8,
    /// A simulated disk: its faults and what a crash keeps of unsynced writes.
    Disk = 9,
}

/// A fresh generator for `stream` of `seed`.
pub fn rng(seed: u64, stream: SimStream) -> ChaCha8Rng {
    Entropy::driver_stream(seed, stream as u64)
}

/// A node's own seed: the world's seed mixed with its name (splitmix64 of the seed xor the
/// name's FNV-1a hash), so two nodes never draw the same ids or keys, and a node's draws do
/// not depend on which other nodes are in the world.
pub fn node_seed(world_seed: u64, name: &str) -> u64 {
    mix(world_seed ^ fnv(name.as_bytes()))
}

/// FNV-1a of `bytes`.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// splitmix64's finalizer.
pub(crate) fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng;

    #[test]
    fn the_streams_are_apart_from_each_other_and_the_kernels() {
        let all = [
            SimStream::Faults,
            SimStream::Workload,
            SimStream::Swarm,
            SimStream::Network,
            SimStream::Disk,
        ];
        let firsts: std::collections::BTreeSet<u64> =
            all.iter().map(|s| rng(7, *s).next_u64()).collect();
        assert_eq!(firsts.len(), all.len(), "two streams drew the same");
        for kernel in hyperkernel::Stream::ALL {
            assert!(all.iter().all(|s| *s as u64 != kernel as u64));
            let own = Entropy::stream(7, kernel).next_u64();
            assert!(
                !firsts.contains(&own),
                "{kernel:?} shares a simulator stream"
            );
        }
    }
}
