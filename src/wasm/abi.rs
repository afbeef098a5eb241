//! The canonical ABI, host side: layouts of WIT types, lifting guest values out of linear
//! memory and core arguments, and lowering host values into guest memory.
//!
//! Types are described once as [`Layout`]s with sizes, alignments, field offsets and flat
//! (core) types precomputed. Lifting validates everything that comes from the guest: bounds,
//! alignment, UTF-8 and discriminants; a guest that breaks any of them gets an [`AbiError`],
//! which the kernel turns into a trap of that process. Lowering allocates every string and
//! list separately through the guest's `cabi_realloc` (the guest frees each one on its own).

use std::fmt;

/// A core wasm value type of a flattened WIT type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flat {
    I32,
    I64,
}

/// The shape of a WIT type; `option`, `result`, `enum` and `tuple` are expressed as variants
/// and records, as the canonical ABI despecializes them.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Bool,
    U8,
    U64,
    String,
    List(Box<Layout>),
    /// Fields with their byte offsets.
    Record(Vec<(u32, Layout)>),
    /// Cases with optional payloads; the payload sits at `payload_offset`.
    Variant {
        payload_offset: u32,
        cases: Vec<Option<Layout>>,
    },
}

/// A WIT type with its memory layout and flattening, computed once.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub(crate) kind: Kind,
    pub(crate) size: u32,
    pub(crate) align: u32,
    pub(crate) flat: Vec<Flat>,
}

fn align_to(offset: u32, align: u32) -> u32 {
    offset.div_ceil(align) * align
}

impl Layout {
    fn scalar(kind: Kind, size: u32, flat: Flat) -> Self {
        Self {
            kind,
            size,
            align: size,
            flat: vec![flat],
        }
    }

    pub(crate) fn bool() -> Self {
        Self::scalar(Kind::Bool, 1, Flat::I32)
    }

    pub(crate) fn u8() -> Self {
        Self::scalar(Kind::U8, 1, Flat::I32)
    }

    pub(crate) fn u64() -> Self {
        Self::scalar(Kind::U64, 8, Flat::I64)
    }

    pub(crate) fn string() -> Self {
        Self {
            kind: Kind::String,
            size: 8,
            align: 4,
            flat: vec![Flat::I32, Flat::I32],
        }
    }

    pub(crate) fn list(element: Self) -> Self {
        Self {
            kind: Kind::List(Box::new(element)),
            size: 8,
            align: 4,
            flat: vec![Flat::I32, Flat::I32],
        }
    }

    pub(crate) fn record(fields: Vec<Self>) -> Self {
        let mut offset = 0;
        let mut align = 1;
        let mut flat = Vec::new();
        let mut placed = Vec::with_capacity(fields.len());
        for field in fields {
            offset = align_to(offset, field.align);
            align = align.max(field.align);
            flat.extend_from_slice(&field.flat);
            let size = field.size;
            placed.push((offset, field));
            offset += size;
        }
        Self {
            kind: Kind::Record(placed),
            size: align_to(offset, align),
            align,
            flat,
        }
    }

    pub(crate) fn variant(cases: Vec<Option<Self>>) -> Self {
        let disc_size = discriminant_size(cases.len());
        let case_align = cases.iter().flatten().map(|c| c.align).max().unwrap_or(1);
        let case_size = cases.iter().flatten().map(|c| c.size).max().unwrap_or(0);
        let payload_offset = align_to(disc_size, case_align);
        let align = disc_size.max(case_align);
        let mut joined: Vec<Flat> = Vec::new();
        for case in cases.iter().flatten() {
            for (i, flat) in case.flat.iter().enumerate() {
                match joined.get_mut(i) {
                    Some(slot) if *slot != *flat => *slot = Flat::I64,
                    Some(_) => {}
                    None => joined.push(*flat),
                }
            }
        }
        let mut flat = vec![Flat::I32];
        flat.extend(joined);
        Self {
            kind: Kind::Variant {
                payload_offset,
                cases,
            },
            size: align_to(payload_offset + case_size, align),
            align,
            flat,
        }
    }

    pub(crate) fn option(some: Self) -> Self {
        Self::variant(vec![None, Some(some)])
    }

    pub(crate) fn result(ok: Option<Self>, err: Option<Self>) -> Self {
        Self::variant(vec![ok, err])
    }

    pub(crate) fn enumeration(cases: usize) -> Self {
        Self::variant(vec![None; cases])
    }
}

fn discriminant_size(cases: usize) -> u32 {
    match cases {
        0..=256 => 1,
        257..=65_536 => 2,
        _ => 4,
    }
}

/// A lifted or to-be-lowered value. `Bytes` is the fast form of `list<u8>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Val {
    Bool(bool),
    U8(u8),
    U64(u64),
    String(String),
    Bytes(Vec<u8>),
    List(Vec<Val>),
    Record(Vec<Val>),
    Variant(u32, Option<Box<Val>>),
}

/// What a guest did wrong at the ABI boundary, or a host value of the wrong shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AbiError {
    OutOfBounds {
        ptr: u32,
        len: u64,
    },
    Misaligned {
        ptr: u32,
        align: u32,
    },
    InvalidUtf8 {
        ptr: u32,
    },
    Discriminant {
        value: u32,
        cases: usize,
    },
    MissingArgument,
    Shape(&'static str),
    Realloc(String),
    /// The call's arguments would take more host memory than the lift budget allows.
    TooLarge {
        limit: u64,
    },
}

/// What one call's arguments may take of host memory when lifted: every string and byte list
/// copied out, and every element of another list, is charged before it is made, so a guest
/// whose strings all point at one large region cannot make the host copy it a thousand times.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    left: u64,
    limit: u64,
}

impl Budget {
    pub(crate) fn new(limit: u64) -> Self {
        Self { left: limit, limit }
    }

    /// Takes `bytes` from the budget, or refuses the whole call.
    pub(crate) fn charge(&mut self, bytes: u64) -> Result<(), AbiError> {
        if bytes > self.left {
            return Err(AbiError::TooLarge { limit: self.limit });
        }
        self.left -= bytes;
        debug_assert!(self.left <= self.limit, "a budget only shrinks");
        Ok(())
    }

    /// Bytes charged so far.
    pub(crate) fn used(&self) -> u64 {
        self.limit - self.left
    }
}

/// Host bytes one lifted list element takes besides its own strings and lists.
const VAL_LEN: u64 = std::mem::size_of::<Val>() as u64;

impl fmt::Display for AbiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfBounds { ptr, len } => {
                write!(f, "{len} bytes at {ptr:#x} are outside linear memory")
            }
            Self::Misaligned { ptr, align } => {
                write!(f, "pointer {ptr:#x} is not aligned to {align}")
            }
            Self::InvalidUtf8 { ptr } => write!(f, "string at {ptr:#x} is not UTF-8"),
            Self::Discriminant { value, cases } => {
                write!(f, "discriminant {value} for a type with {cases} cases")
            }
            Self::MissingArgument => f.write_str("too few core arguments"),
            Self::Shape(what) => write!(f, "host value has the wrong shape for {what}"),
            Self::Realloc(why) => write!(f, "cabi_realloc failed: {why}"),
            Self::TooLarge { limit } => write!(
                f,
                "the call's arguments would take more than {limit} bytes of host memory \
                 (WasmConfig::lift_len_max)"
            ),
        }
    }
}

/// Checks that `len` bytes at `ptr` with alignment `align` lie inside `mem`.
pub(crate) fn span(
    mem: &[u8],
    ptr: u32,
    len: u64,
    align: u32,
) -> Result<std::ops::Range<usize>, AbiError> {
    if !ptr.is_multiple_of(align) {
        return Err(AbiError::Misaligned { ptr, align });
    }
    let end = u64::from(ptr) + len;
    if end > mem.len() as u64 {
        return Err(AbiError::OutOfBounds { ptr, len });
    }
    Ok(ptr as usize..end as usize)
}

pub(crate) fn read<const N: usize>(mem: &[u8], at: usize) -> [u8; N] {
    let mut out = [0; N];
    if let Some(bytes) = mem.get(at..at + N) {
        out.copy_from_slice(bytes);
    }
    out
}

pub(crate) fn read_u32(mem: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(read(mem, at))
}

/// The UTF-8 text of `len` bytes at `ptr`, borrowed from guest memory.
pub(crate) fn str_at(mem: &[u8], ptr: u32, len: u32) -> Result<&str, AbiError> {
    let range = span(mem, ptr, u64::from(len), 1)?;
    let bytes = mem.get(range).unwrap_or_default();
    std::str::from_utf8(bytes).map_err(|_| AbiError::InvalidUtf8 { ptr })
}

/// `len` bytes at `ptr`, borrowed from guest memory.
pub(crate) fn bytes_at(mem: &[u8], ptr: u32, len: u32) -> Result<&[u8], AbiError> {
    let range = span(mem, ptr, u64::from(len), 1)?;
    Ok(mem.get(range).unwrap_or_default())
}

fn lift_string(mem: &[u8], ptr: u32, len: u32, budget: &mut Budget) -> Result<String, AbiError> {
    let text = str_at(mem, ptr, len)?;
    budget.charge(u64::from(len))?;
    Ok(text.to_owned())
}

fn lift_list(
    mem: &[u8],
    element: &Layout,
    ptr: u32,
    len: u32,
    budget: &mut Budget,
) -> Result<Val, AbiError> {
    let bytes = u64::from(element.size) * u64::from(len);
    let range = span(mem, ptr, bytes, element.align)?;
    if matches!(element.kind, Kind::U8) {
        budget.charge(bytes)?;
        return Ok(Val::Bytes(mem.get(range).unwrap_or_default().to_vec()));
    }
    budget.charge(VAL_LEN * u64::from(len))?;
    let mut items = Vec::with_capacity(len as usize);
    for i in 0..len {
        items.push(load(mem, element, ptr + i * element.size, budget)?);
    }
    Ok(Val::List(items))
}

fn case_of(cases: &[Option<Layout>], value: u32) -> Result<Option<&Layout>, AbiError> {
    cases
        .get(value as usize)
        .map(Option::as_ref)
        .ok_or(AbiError::Discriminant {
            value,
            cases: cases.len(),
        })
}

/// Reads a value of layout `layout` at `ptr`.
pub(crate) fn load(
    mem: &[u8],
    layout: &Layout,
    ptr: u32,
    budget: &mut Budget,
) -> Result<Val, AbiError> {
    let at = span(mem, ptr, u64::from(layout.size), layout.align)?.start;
    Ok(match &layout.kind {
        Kind::Bool => Val::Bool(read::<1>(mem, at)[0] != 0),
        Kind::U8 => Val::U8(read::<1>(mem, at)[0]),
        Kind::U64 => Val::U64(u64::from_le_bytes(read(mem, at))),
        Kind::String => Val::String(lift_string(
            mem,
            read_u32(mem, at),
            read_u32(mem, at + 4),
            budget,
        )?),
        Kind::List(element) => lift_list(
            mem,
            element,
            read_u32(mem, at),
            read_u32(mem, at + 4),
            budget,
        )?,
        Kind::Record(fields) => Val::Record(
            fields
                .iter()
                .map(|(offset, field)| load(mem, field, ptr + offset, budget))
                .collect::<Result<_, _>>()?,
        ),
        Kind::Variant {
            payload_offset,
            cases,
        } => {
            let value = match discriminant_size(cases.len()) {
                1 => u32::from(read::<1>(mem, at)[0]),
                2 => u32::from(u16::from_le_bytes(read(mem, at))),
                _ => read_u32(mem, at),
            };
            let payload = match case_of(cases, value)? {
                Some(case) => Some(Box::new(load(mem, case, ptr + payload_offset, budget)?)),
                None => None,
            };
            Val::Variant(value, payload)
        }
    })
}

/// Core arguments being lifted, in order.
pub(crate) struct FlatArgs<'a> {
    values: &'a [u64],
    next: usize,
}

impl<'a> FlatArgs<'a> {
    pub(crate) fn new(values: &'a [u64]) -> Self {
        Self { values, next: 0 }
    }

    fn take(&mut self) -> Result<u64, AbiError> {
        let value = self
            .values
            .get(self.next)
            .ok_or(AbiError::MissingArgument)?;
        self.next += 1;
        Ok(*value)
    }

    fn take_u32(&mut self) -> Result<u32, AbiError> {
        // An i32 in an i64 slot (a joined variant) is its low 32 bits.
        Ok(self.take()? as u32)
    }
}

/// Lifts a value of `layout` from flat core arguments.
pub(crate) fn lift_flat(
    mem: &[u8],
    layout: &Layout,
    args: &mut FlatArgs<'_>,
    budget: &mut Budget,
) -> Result<Val, AbiError> {
    Ok(match &layout.kind {
        Kind::Bool => Val::Bool(args.take_u32()? != 0),
        Kind::U8 => Val::U8(args.take_u32()? as u8),
        Kind::U64 => Val::U64(args.take()?),
        Kind::String => {
            let (ptr, len) = (args.take_u32()?, args.take_u32()?);
            Val::String(lift_string(mem, ptr, len, budget)?)
        }
        Kind::List(element) => {
            let (ptr, len) = (args.take_u32()?, args.take_u32()?);
            lift_list(mem, element, ptr, len, budget)?
        }
        Kind::Record(fields) => Val::Record(
            fields
                .iter()
                .map(|(_, field)| lift_flat(mem, field, args, budget))
                .collect::<Result<_, _>>()?,
        ),
        Kind::Variant { cases, .. } => {
            let value = args.take_u32()?;
            let slots = layout.flat.len() - 1;
            let start = args.next;
            let end = start + slots;
            let window = args
                .values
                .get(start..end)
                .ok_or(AbiError::MissingArgument)?;
            let payload = match case_of(cases, value)? {
                Some(case) => {
                    let mut window = FlatArgs::new(window);
                    Some(Box::new(lift_flat(mem, case, &mut window, budget)?))
                }
                None => None,
            };
            args.next = end;
            Val::Variant(value, payload)
        }
    })
}

/// The guest side of lowering: allocation through `cabi_realloc` and writes into memory.
pub(crate) trait GuestMemory {
    /// A fresh block of `size` bytes aligned to `align`, from the guest's allocator.
    fn alloc(&mut self, align: u32, size: u32) -> Result<u32, AbiError>;
    /// Copies `bytes` to `ptr`.
    fn write(&mut self, ptr: u32, bytes: &[u8]) -> Result<(), AbiError>;
}

/// Lowers `value` of layout `layout` to `ptr` in guest memory.
pub(crate) fn store(
    guest: &mut impl GuestMemory,
    layout: &Layout,
    value: &Val,
    ptr: u32,
) -> Result<(), AbiError> {
    check_result_pointer(ptr, layout)?;
    let mut image = vec![0; layout.size as usize];
    encode(guest, layout, value, &mut image, 0)?;
    guest.write(ptr, &image)
}

/// A result pointer must be aligned to its type (the canonical ABI traps otherwise); checked
/// before anything is allocated in the guest for the result.
pub(crate) fn check_result_pointer(ptr: u32, layout: &Layout) -> Result<(), AbiError> {
    debug_assert!(
        layout.align.is_power_of_two(),
        "alignments are powers of two"
    );
    if !ptr.is_multiple_of(layout.align) {
        return Err(AbiError::Misaligned {
            ptr,
            align: layout.align,
        });
    }
    Ok(())
}

pub(crate) fn put(buf: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), AbiError> {
    buf.get_mut(at..at + bytes.len())
        .ok_or(AbiError::Shape("an image smaller than its layout"))?
        .copy_from_slice(bytes);
    Ok(())
}

/// Copies `bytes` into a fresh guest block; an empty one gets the dangling pointer `align`.
pub(crate) fn alloc_bytes(
    guest: &mut impl GuestMemory,
    align: u32,
    bytes: &[u8],
) -> Result<u32, AbiError> {
    if bytes.is_empty() {
        return Ok(align);
    }
    let len = u32::try_from(bytes.len()).map_err(|_| AbiError::Shape("a list over 4 GiB"))?;
    let ptr = guest.alloc(align, len)?;
    guest.write(ptr, bytes)?;
    Ok(ptr)
}

pub(crate) fn put_pointer(buf: &mut [u8], at: usize, ptr: u32, len: usize) -> Result<(), AbiError> {
    let len = u32::try_from(len).map_err(|_| AbiError::Shape("a list over 4 GiB"))?;
    put(buf, at, &ptr.to_le_bytes())?;
    put(buf, at + 4, &len.to_le_bytes())
}

/// Lowers `value` of `layout` to flat core values, the inverse of [`lift_flat`]: strings and
/// lists are allocated in the guest, a variant's unused slots are zero. Each value's core type
/// is `layout.flat` at its position.
pub(crate) fn lower_flat(
    guest: &mut impl GuestMemory,
    layout: &Layout,
    value: &Val,
    out: &mut Vec<u64>,
) -> Result<(), AbiError> {
    let start = out.len();
    match (&layout.kind, value) {
        (Kind::Bool, Val::Bool(b)) => out.push(u64::from(*b)),
        (Kind::U8, Val::U8(v)) => out.push(u64::from(*v)),
        (Kind::U64, Val::U64(v)) => out.push(*v),
        (Kind::String | Kind::List(_), _) => {
            let mut image = [0u8; 8];
            encode(guest, layout, value, &mut image, 0)?;
            out.push(u64::from(u32::from_le_bytes(read::<4>(&image, 0))));
            out.push(u64::from(u32::from_le_bytes(read::<4>(&image, 4))));
        }
        (Kind::Record(fields), Val::Record(values)) if fields.len() == values.len() => {
            for ((_, field), value) in fields.iter().zip(values) {
                lower_flat(guest, field, value, out)?;
            }
        }
        (Kind::Variant { cases, .. }, Val::Variant(case, payload)) => {
            out.push(u64::from(*case));
            match (case_of(cases, *case)?, payload) {
                (Some(layout), Some(payload)) => lower_flat(guest, layout, payload, out)?,
                (None, None) => {}
                _ => return Err(AbiError::Shape("a variant payload")),
            }
            out.resize(start + layout.flat.len(), 0);
        }
        _ => return Err(AbiError::Shape("a value")),
    }
    debug_assert_eq!(
        out.len() - start,
        layout.flat.len(),
        "one value a flat slot"
    );
    Ok(())
}

fn encode(
    guest: &mut impl GuestMemory,
    layout: &Layout,
    value: &Val,
    buf: &mut [u8],
    at: usize,
) -> Result<(), AbiError> {
    match (&layout.kind, value) {
        (Kind::Bool, Val::Bool(b)) => put(buf, at, &[u8::from(*b)]),
        (Kind::U8, Val::U8(v)) => put(buf, at, &[*v]),
        (Kind::U64, Val::U64(v)) => put(buf, at, &v.to_le_bytes()),
        (Kind::String, Val::String(s)) => {
            let ptr = alloc_bytes(guest, 1, s.as_bytes())?;
            put_pointer(buf, at, ptr, s.len())
        }
        (Kind::List(element), Val::Bytes(bytes)) if matches!(element.kind, Kind::U8) => {
            let ptr = alloc_bytes(guest, 1, bytes)?;
            put_pointer(buf, at, ptr, bytes.len())
        }
        (Kind::List(element), Val::List(items)) => {
            let mut image = vec![0; element.size as usize * items.len()];
            for (i, item) in items.iter().enumerate() {
                encode(guest, element, item, &mut image, i * element.size as usize)?;
            }
            let ptr = alloc_bytes(guest, element.align, &image)?;
            put_pointer(buf, at, ptr, items.len())
        }
        (Kind::Record(fields), Val::Record(values)) if fields.len() == values.len() => {
            for ((offset, field), value) in fields.iter().zip(values) {
                encode(guest, field, value, buf, at + *offset as usize)?;
            }
            Ok(())
        }
        (
            Kind::Variant {
                payload_offset,
                cases,
            },
            Val::Variant(case, payload),
        ) => {
            let disc = case.to_le_bytes();
            let disc_len = discriminant_size(cases.len()) as usize;
            put(buf, at, disc.get(..disc_len).unwrap_or_default())?;
            match (case_of(cases, *case)?, payload) {
                (Some(layout), Some(payload)) => {
                    encode(guest, layout, payload, buf, at + *payload_offset as usize)
                }
                (None, None) => Ok(()),
                _ => Err(AbiError::Shape("a variant payload")),
            }
        }
        _ => Err(AbiError::Shape("a value")),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn lowering_flat_is_lifting_flat_backwards() {
        let layout = Layout::record(vec![
            Layout::string(),
            Layout::result(None, Some(Layout::string())),
            Layout::option(Layout::u64()),
            Layout::list(Layout::record(vec![Layout::bool(), Layout::u8()])),
        ]);
        let value = Val::Record(vec![
            Val::String("our.os".into()),
            Val::Variant(1, Some(Box::new(Val::String("why".into())))),
            Val::Variant(1, Some(Box::new(Val::U64(u64::MAX)))),
            Val::List(vec![Val::Record(vec![Val::Bool(true), Val::U8(7)])]),
        ]);
        let mut guest = Bump {
            mem: vec![0; 4096],
            top: 16,
        };
        let mut flat = Vec::new();
        lower_flat(&mut guest, &layout, &value, &mut flat).unwrap();
        assert_eq!(flat.len(), layout.flat.len());
        let budget = &mut Budget::new(1 << 20);
        let back = lift_flat(&guest.mem, &layout, &mut FlatArgs::new(&flat), budget).unwrap();
        assert_eq!(back, value);
        // An error case with no payload fills the payload slots with zeros.
        let ok = Layout::result(None, Some(Layout::string()));
        let mut flat = Vec::new();
        lower_flat(&mut guest, &ok, &Val::Variant(0, None), &mut flat).unwrap();
        assert_eq!(flat, [0, 0, 0]);
        assert!(lower_flat(&mut guest, &ok, &Val::Bool(true), &mut flat).is_err());
    }

    /// A guest memory backed by a vector, with a bump allocator (shared with `fast.rs`).
    pub(crate) struct Bump {
        pub(crate) mem: Vec<u8>,
        pub(crate) top: u32,
    }

    impl GuestMemory for Bump {
        fn alloc(&mut self, align: u32, size: u32) -> Result<u32, AbiError> {
            let ptr = align_to(self.top, align);
            self.top = ptr + size;
            Ok(ptr)
        }

        fn write(&mut self, ptr: u32, bytes: &[u8]) -> Result<(), AbiError> {
            put(&mut self.mem, ptr as usize, bytes)
        }
    }

    fn sample() -> (Layout, Val) {
        let layout = Layout::record(vec![
            Layout::bool(),
            Layout::option(Layout::u64()),
            Layout::list(Layout::u8()),
            Layout::list(Layout::record(vec![Layout::string(), Layout::u8()])),
            Layout::enumeration(3),
        ]);
        let value = Val::Record(vec![
            Val::Bool(true),
            Val::Variant(1, Some(Box::new(Val::U64(u64::MAX - 7)))),
            Val::Bytes(vec![1, 2, 3]),
            Val::List(vec![
                Val::Record(vec![Val::String("héllo".into()), Val::U8(9)]),
                Val::Record(vec![Val::String(String::new()), Val::U8(0)]),
            ]),
            Val::Variant(2, None),
        ]);
        (layout, value)
    }

    #[test]
    fn store_then_load_round_trips() {
        let (layout, value) = sample();
        let mut guest = Bump {
            mem: vec![0; 4096],
            top: 1024,
        };
        store(&mut guest, &layout, &value, 8).unwrap();
        let mut budget = Budget::new(u64::MAX);
        assert_eq!(load(&guest.mem, &layout, 8, &mut budget).unwrap(), value);
    }

    #[test]
    fn layouts_follow_the_canonical_abi() {
        let (layout, _) = sample();
        // bool@0, option<u64>@8 (16 B), list@24, list@32, enum@40 → 41, padded to 48.
        assert_eq!((layout.size, layout.align), (48, 8));
        assert_eq!(layout.flat.len(), 1 + 2 + 2 + 2 + 1);
        let joined = Layout::variant(vec![Some(Layout::u8()), Some(Layout::u64())]);
        assert_eq!(joined.flat, vec![Flat::I32, Flat::I64]);
    }

    #[test]
    fn a_lift_is_charged_before_it_copies_and_refused_past_its_budget() {
        // A list of 1 000 strings that all point at the same 1 000 bytes.
        let mut mem = vec![b'x'; 1000 + 8 * 1000 + 8];
        let list_at = 1000_u32;
        for i in 0..1000_u32 {
            let at = (list_at + 8 * i) as usize;
            mem[at..at + 4].copy_from_slice(&0_u32.to_le_bytes());
            mem[at + 4..at + 8].copy_from_slice(&1000_u32.to_le_bytes());
        }
        let strings = Layout::list(Layout::string());
        let args = [u64::from(list_at), 1000];
        let mut budget = Budget::new(100_000);
        assert_eq!(
            lift_flat(&mem, &strings, &mut FlatArgs::new(&args), &mut budget),
            Err(AbiError::TooLarge { limit: 100_000 })
        );
        let mut enough = Budget::new(2_000_000);
        assert!(lift_flat(&mem, &strings, &mut FlatArgs::new(&args), &mut enough).is_ok());
        assert_eq!(enough.used(), 1000 * 1000 + 1000 * VAL_LEN);
    }

    #[test]
    fn lifting_rejects_what_a_guest_gets_wrong() {
        let mem = vec![0xff_u8; 64];
        let string = Layout::string();
        let mut args = FlatArgs::new(&[0, 3]);
        assert_eq!(
            lift_flat(&mem, &string, &mut args, &mut Budget::new(u64::MAX)),
            Err(AbiError::InvalidUtf8 { ptr: 0 })
        );
        let mut args = FlatArgs::new(&[60, 8]);
        assert!(matches!(
            lift_flat(&mem, &string, &mut args, &mut Budget::new(u64::MAX)),
            Err(AbiError::OutOfBounds { .. })
        ));
        assert_eq!(
            load(&mem, &Layout::u64(), 4, &mut Budget::new(u64::MAX)),
            Err(AbiError::Misaligned { ptr: 4, align: 8 })
        );
        assert_eq!(
            load(&mem, &Layout::enumeration(2), 0, &mut Budget::new(u64::MAX)),
            Err(AbiError::Discriminant {
                value: 255,
                cases: 2
            })
        );
    }
}
