//! What the simulator feeds a kernel through: its one input door, optionally recording every
//! input in order. A node of a world records its inputs from its boot, so the node can be run
//! again alone from them (`world::drive::replay_alone`) and must give the same trace: the
//! proof that nothing reached it except through `Kernel::input` (the world invariant W9).

use hyperkernel::{Input, Kernel, KernelError, Output};

/// A kernel's input door, and a read-only view of the kernel behind it.
pub trait Feed {
    /// Gives the kernel `input` (`Kernel::input`).
    ///
    /// # Errors
    /// As `Kernel::input`.
    fn input(&mut self, input: Input) -> Result<Output, KernelError>;

    /// The kernel, to read.
    fn state(&self) -> &Kernel;
}

impl Feed for Kernel {
    fn input(&mut self, input: Input) -> Result<Output, KernelError> {
        Kernel::input(self, input)
    }

    fn state(&self) -> &Kernel {
        self
    }
}

/// A kernel whose inputs are recorded, in order, when `log` is on.
pub struct Logged<'a> {
    /// The kernel.
    pub kernel: &'a mut Kernel,
    /// Where its inputs go (none: not recorded).
    pub log: Option<&'a mut Vec<Input>>,
}

impl Feed for Logged<'_> {
    fn input(&mut self, input: Input) -> Result<Output, KernelError> {
        if let Some(log) = self.log.as_mut() {
            let before = log.len();
            log.push(input.clone());
            debug_assert_eq!(log.len(), before + 1, "one entry an input");
        }
        self.kernel.input(input)
    }

    fn state(&self) -> &Kernel {
        self.kernel
    }
}
