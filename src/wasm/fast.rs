//! Direct typed paths for the hot types: lowering what `receive` and `send-and-await-response`
//! hand a guest (an address and a message), and lifting what `send-request` is called with.
//! They read and write the same bytes as the generic `abi` paths over a `Val` tree, without
//! building the tree; offsets come from the same layouts (which `wit_check.rs` pins), and the
//! tests check both paths agree byte for byte.

use super::abi::{
    AbiError, Budget, GuestMemory, Kind, Layout, alloc_bytes, bytes_at, load, put, put_pointer,
    read, read_u32, span, str_at,
};
use super::wit::types;
use crate::types::{
    Address, Context, LazyLoadBlob, Message, ProcessId, Request, Response, SignedCapability,
};

const SHAPE: AbiError = AbiError::Shape("a typed lowering");

fn field(layout: &Layout, index: usize) -> Result<(usize, &Layout), AbiError> {
    match &layout.kind {
        Kind::Record(fields) => fields
            .get(index)
            .map(|(offset, field)| (*offset as usize, field))
            .ok_or(SHAPE),
        _ => Err(SHAPE),
    }
}

/// The payload offset and layout of case `case` of a variant.
fn case(layout: &Layout, case: usize) -> Result<(usize, Option<&Layout>), AbiError> {
    match &layout.kind {
        Kind::Variant {
            payload_offset,
            cases,
        } => cases
            .get(case)
            .map(|c| (*payload_offset as usize, c.as_ref()))
            .ok_or(SHAPE),
        _ => Err(SHAPE),
    }
}

fn string(
    g: &mut impl GuestMemory,
    buf: &mut [u8],
    at: usize,
    text: &[u8],
) -> Result<(), AbiError> {
    let ptr = alloc_bytes(g, 1, text)?;
    put_pointer(buf, at, ptr, text.len())
}

fn option_string(
    g: &mut impl GuestMemory,
    layout: &Layout,
    buf: &mut [u8],
    at: usize,
    text: Option<&[u8]>,
) -> Result<(), AbiError> {
    let Some(text) = text else {
        return put(buf, at, &[0]);
    };
    put(buf, at, &[1])?;
    let (offset, _) = case(layout, 1)?;
    string(g, buf, at + offset, text)
}

fn address(
    g: &mut impl GuestMemory,
    layout: &Layout,
    buf: &mut [u8],
    at: usize,
    a: &Address,
) -> Result<(), AbiError> {
    let (node, _) = field(layout, 0)?;
    let (pid, pid_layout) = field(layout, 1)?;
    string(g, buf, at + node, a.node.as_bytes())?;
    let parts = [
        a.process.process(),
        a.process.package(),
        a.process.publisher(),
    ];
    for (i, part) in parts.into_iter().enumerate() {
        let (offset, _) = field(pid_layout, i)?;
        string(g, buf, at + pid + offset, part.as_bytes())?;
    }
    Ok(())
}

fn capabilities(
    g: &mut impl GuestMemory,
    layout: &Layout,
    buf: &mut [u8],
    at: usize,
    caps: &[SignedCapability],
) -> Result<(), AbiError> {
    let Kind::List(element) = &layout.kind else {
        return Err(SHAPE);
    };
    let size = element.size as usize;
    let mut image = vec![0; size * caps.len()];
    let (issuer, issuer_layout) = field(element, 0)?;
    let (params, _) = field(element, 1)?;
    for (i, (cap, _signature)) in caps.iter().enumerate() {
        address(g, issuer_layout, &mut image, i * size + issuer, &cap.issuer)?;
        string(g, &mut image, i * size + params, cap.params.as_bytes())?;
    }
    let ptr = alloc_bytes(g, element.align, &image)?;
    put_pointer(buf, at, ptr, caps.len())
}

fn request(
    g: &mut impl GuestMemory,
    layout: &Layout,
    buf: &mut [u8],
    at: usize,
    r: &Request,
) -> Result<(), AbiError> {
    put(buf, at + field(layout, 0)?.0, &[u8::from(r.inherit)])?;
    let (expects, expects_layout) = field(layout, 1)?;
    if let Some(seconds) = r.expects_response {
        put(buf, at + expects, &[1])?;
        let (offset, _) = case(expects_layout, 1)?;
        put(buf, at + expects + offset, &seconds.to_le_bytes())?;
    }
    string(g, buf, at + field(layout, 2)?.0, &r.body)?;
    let (metadata, metadata_layout) = field(layout, 3)?;
    option_string(
        g,
        metadata_layout,
        buf,
        at + metadata,
        r.metadata.as_deref().map(str::as_bytes),
    )?;
    let (caps, caps_layout) = field(layout, 4)?;
    capabilities(g, caps_layout, buf, at + caps, &r.capabilities)
}

fn response(
    g: &mut impl GuestMemory,
    layout: &Layout,
    buf: &mut [u8],
    at: usize,
    r: &Response,
) -> Result<(), AbiError> {
    put(buf, at + field(layout, 0)?.0, &[u8::from(r.inherit)])?;
    string(g, buf, at + field(layout, 1)?.0, &r.body)?;
    let (metadata, metadata_layout) = field(layout, 2)?;
    option_string(
        g,
        metadata_layout,
        buf,
        at + metadata,
        r.metadata.as_deref().map(str::as_bytes),
    )?;
    let (caps, caps_layout) = field(layout, 3)?;
    capabilities(g, caps_layout, buf, at + caps, &r.capabilities)
}

fn message(
    g: &mut impl GuestMemory,
    layout: &Layout,
    buf: &mut [u8],
    at: usize,
    m: &Message,
) -> Result<(), AbiError> {
    match m {
        Message::Request(r) => {
            put(buf, at, &[0])?;
            let (offset, case_layout) = case(layout, 0)?;
            request(g, case_layout.ok_or(SHAPE)?, buf, at + offset, r)
        }
        Message::Response((r, context)) => {
            put(buf, at, &[1])?;
            let (offset, case_layout) = case(layout, 1)?;
            let tuple = case_layout.ok_or(SHAPE)?;
            let (resp, resp_layout) = field(tuple, 0)?;
            response(g, resp_layout, buf, at + offset + resp, r)?;
            let (ctx, ctx_layout) = field(tuple, 1)?;
            option_string(g, ctx_layout, buf, at + offset + ctx, context.as_deref())
        }
    }
}

/// Lowers `ok((source, message))` of a `result` whose ok case is `tuple<address, message>` (the
/// results of `receive` and `send-and-await-response`) to `ptr`.
pub(crate) fn store_ok_received(
    g: &mut impl GuestMemory,
    result: &Layout,
    ptr: u32,
    source: &Address,
    m: &Message,
) -> Result<(), AbiError> {
    super::abi::check_result_pointer(ptr, result)?;
    let mut image = vec![0; result.size as usize];
    let (offset, ok) = case(result, 0)?;
    let ok = ok.ok_or(SHAPE)?;
    let t = types();
    address(g, &t.address, &mut image, offset + field(ok, 0)?.0, source)?;
    message(g, &t.message, &mut image, offset + field(ok, 1)?.0, m)?;
    g.write(ptr, &image)
}

// ---- Typed lifting of `send-request` ----

/// The last address a process sent to, reused when the guest names it again (the common
/// case: a process talks to few peers), so lifting it allocates and parses nothing.
#[derive(Default)]
pub(crate) struct AddressCache(Option<Address>);

impl AddressCache {
    fn get(
        &mut self,
        node: &str,
        process: &str,
        package: &str,
        publisher: &str,
    ) -> Result<Address, String> {
        if let Some(cached) = &self.0
            && *cached.node == *node
            && cached.process.process() == process
            && cached.process.package() == package
            && cached.process.publisher() == publisher
        {
            return Ok(cached.clone());
        }
        if node.is_empty() {
            return Err("an address with an empty node".into());
        }
        let id = ProcessId::new(process, package, publisher)
            .map_err(|e| format!("invalid process id {process}:{package}:{publisher}: {e}"))?;
        let address = Address::new(node, id);
        self.0 = Some(address.clone());
        Ok(address)
    }
}

/// A string field, borrowed; its length is charged to `budget` (it may be copied).
fn text_field<'m>(mem: &'m [u8], at: usize, budget: &mut Budget) -> Result<&'m str, AbiError> {
    let text = str_at(mem, read_u32(mem, at), read_u32(mem, at + 4))?;
    budget.charge(text.len() as u64)?;
    Ok(text)
}

/// A byte-list field, charged to `budget` before it is copied.
fn bytes_field(mem: &[u8], at: usize, budget: &mut Budget) -> Result<Vec<u8>, AbiError> {
    let bytes = bytes_at(mem, read_u32(mem, at), read_u32(mem, at + 4))?;
    budget.charge(bytes.len() as u64)?;
    Ok(bytes.to_vec())
}

/// The discriminant of an `option` at `at`: `false` for none.
fn present(mem: &[u8], at: usize) -> Result<bool, AbiError> {
    match read::<1>(mem, at)[0] {
        0 => Ok(false),
        1 => Ok(true),
        value => Err(AbiError::Discriminant {
            value: u32::from(value),
            cases: 2,
        }),
    }
}

fn lift_address(
    mem: &[u8],
    layout: &Layout,
    at: usize,
    cache: &mut AddressCache,
    budget: &mut Budget,
) -> Result<Address, String> {
    let e = |e: AbiError| e.to_string();
    let (node, _) = field(layout, 0).map_err(e)?;
    let (pid, pid_layout) = field(layout, 1).map_err(e)?;
    let mut parts = [""; 3];
    for (i, part) in parts.iter_mut().enumerate() {
        let offset = field(pid_layout, i).map_err(e)?.0;
        *part = text_field(mem, at + pid + offset, budget).map_err(e)?;
    }
    let node = text_field(mem, at + node, budget).map_err(e)?;
    cache.get(node, parts[0], parts[1], parts[2])
}

fn lift_request(
    mem: &[u8],
    layout: &Layout,
    at: usize,
    budget: &mut Budget,
) -> Result<Request, String> {
    let e = |e: AbiError| e.to_string();
    let inherit = read::<1>(mem, at + field(layout, 0).map_err(e)?.0)[0] != 0;
    let (expects, expects_layout) = field(layout, 1).map_err(e)?;
    let expects_response = if present(mem, at + expects).map_err(e)? {
        let (offset, _) = case(expects_layout, 1).map_err(e)?;
        Some(u64::from_le_bytes(read(mem, at + expects + offset)))
    } else {
        None
    };
    let body = bytes_field(mem, at + field(layout, 2).map_err(e)?.0, budget).map_err(e)?;
    let (metadata, metadata_layout) = field(layout, 3).map_err(e)?;
    let metadata = if present(mem, at + metadata).map_err(e)? {
        let (offset, _) = case(metadata_layout, 1).map_err(e)?;
        Some(
            text_field(mem, at + metadata + offset, budget)
                .map_err(e)?
                .to_owned(),
        )
    } else {
        None
    };
    let (caps, caps_layout) = field(layout, 4).map_err(e)?;
    let capabilities = match &caps_layout.kind {
        // The common case, no capabilities: only the pointer's alignment and bounds to check,
        // as the canonical ABI requires even of an empty list.
        Kind::List(element) if read_u32(mem, at + caps + 4) == 0 => {
            span(mem, read_u32(mem, at + caps), 0, element.align).map_err(e)?;
            Vec::new()
        }
        _ => {
            let value = load(mem, caps_layout, (at + caps) as u32, budget).map_err(e)?;
            super::wit::capabilities(value)?
                .into_iter()
                .map(|c| (c, Vec::new()))
                .collect()
        }
    };
    Ok(Request {
        inherit,
        expects_response,
        body,
        metadata,
        capabilities,
    })
}

/// What `send-request` was called with.
pub(crate) type SendRequest = (Address, Request, Option<Context>, Option<LazyLoadBlob>);

/// Lifts the parameter record of `send-request` at `ptr`.
pub(crate) fn lift_send_request(
    mem: &[u8],
    params: &Layout,
    ptr: u32,
    cache: &mut AddressCache,
    budget: &mut Budget,
) -> Result<SendRequest, String> {
    let e = |e: AbiError| e.to_string();
    let at = span(mem, ptr, u64::from(params.size), params.align)
        .map_err(e)?
        .start;
    let (target, target_layout) = field(params, 0).map_err(e)?;
    let target = lift_address(mem, target_layout, at + target, cache, budget)?;
    let (request_at, request_layout) = field(params, 1).map_err(e)?;
    let request = lift_request(mem, request_layout, at + request_at, budget)?;
    let (context, context_layout) = field(params, 2).map_err(e)?;
    let context = if present(mem, at + context).map_err(e)? {
        let (offset, _) = case(context_layout, 1).map_err(e)?;
        Some(bytes_field(mem, at + context + offset, budget).map_err(e)?)
    } else {
        None
    };
    let (blob, blob_layout) = field(params, 3).map_err(e)?;
    let blob = if present(mem, at + blob).map_err(e)? {
        let value = load(mem, blob_layout, (at + blob) as u32, budget).map_err(e)?;
        super::wit::optional(value, super::wit::blob)?
    } else {
        None
    };
    Ok((target, request, context, blob))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Capability;
    use crate::wasm::abi::tests::Bump;
    use crate::wasm::abi::{Val, load, store};
    use crate::wasm::wit::{self, Func};
    use proptest::prelude::*;
    use proptest::test_runner::FileFailurePersistence;

    fn messages() -> Vec<Message> {
        let cap = Capability {
            issuer: "our.os@a:b:c.os".parse().unwrap(),
            params: "{\"x\":1}".into(),
        };
        let mut request = Request::new("hello").expecting(7);
        request.metadata = Some("{\"m\":true}".into());
        request.capabilities = vec![(cap.clone(), vec![1, 2]), (cap, Vec::new())];
        let mut response = Response::new("");
        response.inherit = true;
        vec![
            Message::Request(request),
            Message::Request(Request::new(Vec::new())),
            Message::Response((response.clone(), Some(b"ctx".to_vec()))),
            Message::Response((response, None)),
        ]
    }

    #[test]
    fn the_fast_path_writes_what_the_generic_path_writes() {
        let source: Address = "node.os@proc:pkg:pub.os".parse().unwrap();
        for func in [Func::Receive, Func::SendAndAwaitResponse] {
            let layout = wit::import_of(func).result.as_ref().unwrap();
            for m in messages() {
                let mut generic = Bump {
                    mem: vec![0; 4096],
                    top: 512,
                };
                let value =
                    Val::Record(vec![wit::address_val(&source), wit::message_val(m.clone())]);
                store(&mut generic, layout, &wit::result_val(Ok(value)), 8).unwrap();
                let mut fast = Bump {
                    mem: vec![0; 4096],
                    top: 512,
                };
                store_ok_received(&mut fast, layout, 8, &source, &m).unwrap();
                assert_eq!(generic.top, fast.top, "{func:?} {m:?}");
                assert!(generic.mem == fast.mem, "{func:?} {m:?}");
            }
        }
    }

    #[test]
    fn the_typed_send_request_lift_reads_what_the_generic_lift_reads() {
        let params = &wit::import_of(Func::SendRequest).params;
        let target: Address = "node.os@proc:pkg:pub.os".parse().unwrap();
        let mut cache = AddressCache::default();
        for m in messages() {
            let Message::Request(request) = m else {
                continue;
            };
            for (context, blob) in [
                (None, None),
                (
                    Some(b"c".to_vec()),
                    Some(LazyLoadBlob {
                        mime: Some("t".into()),
                        bytes: vec![9],
                    }),
                ),
            ] {
                let value = Val::Record(vec![
                    wit::address_val(&target),
                    wit::request_val(request.clone()),
                    wit::option_of(context.clone(), Val::Bytes),
                    wit::option_of(blob.clone(), wit::blob_val),
                ]);
                let mut guest = Bump {
                    mem: vec![0; 4096],
                    top: 512,
                };
                store(&mut guest, params, &value, 8).unwrap();
                let typed = lift_send_request(
                    &guest.mem,
                    params,
                    8,
                    &mut cache,
                    &mut Budget::new(u64::MAX),
                )
                .unwrap();
                let unsigned: Vec<_> = request
                    .capabilities
                    .iter()
                    .map(|(c, _)| (c.clone(), Vec::new()))
                    .collect();
                let expected = Request {
                    capabilities: unsigned,
                    ..request.clone()
                };
                assert_eq!(typed, (target.clone(), expected, context, blob));
            }
        }
        let bad = lift_send_request(&[0; 64], params, 8, &mut cache, &mut Budget::new(u64::MAX));
        assert!(bad.unwrap_err().contains("outside linear memory"));
    }

    /// The generic lift of `send-request`'s parameters and the conversions `defer.rs` applies.
    fn generic_send_request(mem: &[u8], params: &Layout) -> Result<SendRequest, String> {
        let Val::Record(fields) =
            load(mem, params, 8, &mut Budget::new(u64::MAX)).map_err(|e| e.to_string())?
        else {
            return Err("parameters are not a record".into());
        };
        let mut fields = fields.into_iter();
        let mut next = || fields.next().ok_or_else(|| "missing parameter".to_owned());
        Ok((
            wit::address(next()?)?,
            wit::request(next()?)?,
            wit::optional(next()?, |v| wit::bytes(v).map_err(|e| e.to_string()))?,
            wit::optional(next()?, wit::blob)?,
        ))
    }

    fn arb_address() -> impl Strategy<Value = Address> {
        prop::sample::select(vec![
            "node.os@proc:pkg:pub.os",
            "our.os@a:b:c.os",
            "x@y:z:w",
        ])
        .prop_map(|a| a.parse::<Address>().unwrap())
    }

    fn arb_request() -> impl Strategy<Value = Request> {
        let capability = (
            arb_address(),
            "[a-z0-9{}\":,]{0,8}",
            prop::collection::vec(any::<u8>(), 0..3),
        )
            .prop_map(|(issuer, params, signature)| (Capability { issuer, params }, signature));
        (
            any::<bool>(),
            proptest::option::of(any::<u64>()),
            prop::collection::vec(any::<u8>(), 0..8),
            proptest::option::of("[a-z{}\":]{0,8}"),
            prop::collection::vec(capability, 0..3),
        )
            .prop_map(
                |(inherit, expects_response, body, metadata, capabilities)| Request {
                    inherit,
                    expects_response,
                    body,
                    metadata,
                    capabilities,
                },
            )
    }

    fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..6)
    }

    /// `send-request`'s parameters as a value.
    fn arb_send() -> impl Strategy<Value = Val> {
        let blob = (proptest::option::of("[a-z/]{0,6}"), arb_bytes())
            .prop_map(|(mime, bytes)| LazyLoadBlob { mime, bytes });
        (
            arb_address(),
            arb_request(),
            proptest::option::of(arb_bytes()),
            proptest::option::of(blob),
        )
            .prop_map(|(target, request, context, blob)| {
                Val::Record(vec![
                    wit::address_val(&target),
                    wit::request_val(request),
                    wit::option_of(context, Val::Bytes),
                    wit::option_of(blob, wit::blob_val),
                ])
            })
    }

    /// A received message: a request, or a response with or without a context.
    fn arb_message() -> impl Strategy<Value = Message> {
        let response =
            (arb_request(), proptest::option::of(arb_bytes())).prop_map(|(r, context)| {
                let response = Response {
                    inherit: r.inherit,
                    body: r.body,
                    metadata: r.metadata,
                    capabilities: r.capabilities,
                };
                Message::Response((response, context))
            });
        prop_oneof![arb_request().prop_map(Message::Request), response]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/send_request_lift.txt"
            )))),
            ..ProptestConfig::default()
        })]

        /// A guest's `send-request` parameters, written and then damaged at a few bytes: the
        /// typed lift accepts exactly what the generic lift accepts, reads the same values,
        /// and never panics; a cached target changes none of it.
        #[test]
        fn the_typed_lift_agrees_with_the_generic_one_on_damaged_memory(
            value in arb_send(),
            damage in prop::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 0..4),
        ) {
            let params = &wit::import_of(Func::SendRequest).params;
            let mut guest = Bump { mem: vec![0; 4096], top: 512 };
            store(&mut guest, params, &value, 8).unwrap();
            // Damage only what was written: the parameter record and the blocks it points to.
            let record = 8..8 + params.size as usize;
            let used: Vec<usize> = record.chain(512..guest.top as usize).collect();
            for (at, bits) in damage {
                guest.mem[used[at.index(used.len())]] ^= bits;
            }
            let generic = generic_send_request(&guest.mem, params);
            let mut cache = AddressCache::default();
            for _ in 0..2 {
                let typed = lift_send_request(&guest.mem, params, 8, &mut cache, &mut Budget::new(u64::MAX));
                match (&typed, &generic) {
                    (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                    (Err(_), Err(_)) => {}
                    _ => prop_assert!(false, "typed {:?} but generic {:?}", typed, generic),
                }
            }
        }

        /// The typed lowering of a received message writes the same bytes, and allocates the
        /// same blocks, as the generic lowering of the same value.
        #[test]
        fn the_typed_lowering_writes_what_the_generic_one_writes(
            source in arb_address(),
            message in arb_message(),
            awaited in any::<bool>(),
        ) {
            let func = if awaited { Func::SendAndAwaitResponse } else { Func::Receive };
            let layout = wit::import_of(func).result.as_ref().unwrap();
            let mut generic = Bump { mem: vec![0; 4096], top: 512 };
            let value = Val::Record(vec![wit::address_val(&source), wit::message_val(message.clone())]);
            store(&mut generic, layout, &wit::result_val(Ok(value)), 8).unwrap();
            let mut fast = Bump { mem: vec![0; 4096], top: 512 };
            store_ok_received(&mut fast, layout, 8, &source, &message).unwrap();
            prop_assert_eq!(generic.top, fast.top);
            prop_assert!(generic.mem == fast.mem);
        }
    }
}
