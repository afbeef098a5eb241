//! One simulated node: its scenario loaded and set up, its apps, guests and natives, its
//! store on a simulated disk and its life across reboots, the faults inside its kernel and
//! its fault plan, the one-node network and its peers' nodes (real kernels running natives),
//! the seeded streams, the workload generators and the record of its inputs.

pub mod apps;
pub mod disk;
pub mod faults;
pub mod feed;
pub mod generate;
pub mod guests;
pub mod inside;
pub mod natives;
pub mod network;
pub mod peers;
pub mod reboot;
pub mod scenario;
pub mod setup;
pub mod streams;
