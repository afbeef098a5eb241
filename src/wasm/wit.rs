//! The WIT interface `hyperware:process/standard@1.0.0` as the host sees it: the layout of
//! every type, the table of imports with their core signatures, and conversions between
//! lifted values and the kernel's types.
//!
//! The table is authoritative for the linker; `tests/it/wasm/abi.rs` pins it against
//! `wit/process.wit` as wit-parser reads it, so a WIT change breaks a test instead of memory.

use super::abi::{AbiError, Flat, Layout, Val};
use crate::types::{
    Address, Capability, LazyLoadBlob, Message, OnExit, ProcessId, Request, Response, SendError,
    SendErrorKind,
};
use std::sync::OnceLock;

/// The import module every host function lives in.
pub(crate) const MODULE: &str = "hyperware:process/standard@1.0.0";

/// More flat parameters than this go through memory (canonical ABI `MAX_FLAT_PARAMS`).
const MAX_FLAT_PARAMS: usize = 16;

/// Layouts of the interface's types.
pub(crate) struct Types {
    pub(crate) string: Layout,
    pub(crate) bytes: Layout,
    pub(crate) process_id: Layout,
    pub(crate) address: Layout,
    pub(crate) blob: Layout,
    pub(crate) capability: Layout,
    pub(crate) request: Layout,
    pub(crate) response: Layout,
    pub(crate) message: Layout,
    pub(crate) on_exit: Layout,
    pub(crate) send_error: Layout,
}

impl Types {
    fn new() -> Self {
        let string = Layout::string();
        let bytes = Layout::list(Layout::u8());
        let process_id = Layout::record(vec![string.clone(), string.clone(), string.clone()]);
        let address = Layout::record(vec![string.clone(), process_id.clone()]);
        let blob = Layout::record(vec![Layout::option(string.clone()), bytes.clone()]);
        let capability = Layout::record(vec![address.clone(), string.clone()]);
        let caps = Layout::list(capability.clone());
        let metadata = Layout::option(string.clone());
        let request = Layout::record(vec![
            Layout::bool(),
            Layout::option(Layout::u64()),
            bytes.clone(),
            metadata.clone(),
            caps.clone(),
        ]);
        let response = Layout::record(vec![Layout::bool(), bytes.clone(), metadata, caps]);
        let message = Layout::variant(vec![
            Some(request.clone()),
            Some(Layout::record(vec![
                response.clone(),
                Layout::option(bytes.clone()),
            ])),
        ]);
        let on_exit = Layout::variant(vec![
            None,
            None,
            Some(Layout::list(Layout::record(vec![
                address.clone(),
                request.clone(),
                Layout::option(blob.clone()),
            ]))),
        ]);
        let send_error = Layout::record(vec![
            Layout::enumeration(2),
            address.clone(),
            message.clone(),
            Layout::option(blob.clone()),
        ]);
        Self {
            string,
            bytes,
            process_id,
            address,
            blob,
            capability,
            request,
            response,
            message,
            on_exit,
            send_error,
        }
    }
}

/// The interface's types, computed once.
pub(crate) fn types() -> &'static Types {
    static TYPES: OnceLock<Types> = OnceLock::new();
    TYPES.get_or_init(Types::new)
}

/// The host functions, one per WIT import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Func {
    PrintToTerminal,
    Our,
    GetOnExit,
    SetOnExit,
    GetState,
    SetState,
    ClearState,
    Spawn,
    SaveCapabilities,
    DropCapabilities,
    OurCapabilities,
    Receive,
    HasBlob,
    GetBlob,
    LastBlob,
    SendRequest,
    SendRequests,
    SendResponse,
    SendAndAwaitResponse,
}

/// One import: its WIT name, its parameters as one record, and its result.
pub(crate) struct Import {
    pub(crate) func: Func,
    pub(crate) name: &'static str,
    pub(crate) params: Layout,
    pub(crate) result: Option<Layout>,
}

impl Import {
    /// Parameters go through memory: one pointer to the parameter record.
    pub(crate) fn indirect(&self) -> bool {
        self.params.flat.len() > MAX_FLAT_PARAMS
    }

    /// The result goes through memory: a trailing pointer parameter, no core result.
    pub(crate) fn retptr(&self) -> bool {
        self.result.as_ref().is_some_and(|r| r.flat.len() > 1)
    }

    /// The core parameter types.
    pub(crate) fn core_params(&self) -> Vec<Flat> {
        let mut params = if self.indirect() {
            vec![Flat::I32]
        } else {
            self.params.flat.clone()
        };
        if self.retptr() {
            params.push(Flat::I32);
        }
        params
    }

    /// The core result types.
    pub(crate) fn core_results(&self) -> Vec<Flat> {
        match &self.result {
            Some(result) if result.flat.len() == 1 => result.flat.clone(),
            _ => Vec::new(),
        }
    }
}

fn import(func: Func, name: &'static str, params: Vec<Layout>, result: Option<Layout>) -> Import {
    Import {
        func,
        name,
        params: Layout::record(params),
        result,
    }
}

/// Identity, lifecycle and state imports.
fn system_imports() -> Vec<Import> {
    let t = types();
    let option = Layout::option;
    let caps = || Layout::list(t.capability.clone());
    let grants = Layout::list(Layout::record(vec![t.process_id.clone(), t.string.clone()]));
    vec![
        import(
            Func::PrintToTerminal,
            "print-to-terminal",
            vec![Layout::u8(), t.string.clone()],
            None,
        ),
        import(Func::Our, "our", vec![], Some(t.address.clone())),
        import(
            Func::GetOnExit,
            "get-on-exit",
            vec![],
            Some(t.on_exit.clone()),
        ),
        import(
            Func::SetOnExit,
            "set-on-exit",
            vec![t.on_exit.clone()],
            None,
        ),
        import(
            Func::GetState,
            "get-state",
            vec![],
            Some(option(t.bytes.clone())),
        ),
        import(Func::SetState, "set-state", vec![t.bytes.clone()], None),
        import(Func::ClearState, "clear-state", vec![], None),
        import(
            Func::Spawn,
            "spawn",
            vec![
                option(t.string.clone()),
                t.string.clone(),
                t.on_exit.clone(),
                caps(),
                grants,
                Layout::bool(),
            ],
            Some(Layout::result(
                Some(t.process_id.clone()),
                Some(Layout::enumeration(2)),
            )),
        ),
    ]
}

/// Capability imports.
fn capability_imports() -> Vec<Import> {
    let t = types();
    let caps = || Layout::list(t.capability.clone());
    vec![
        import(
            Func::SaveCapabilities,
            "save-capabilities",
            vec![caps()],
            None,
        ),
        import(
            Func::DropCapabilities,
            "drop-capabilities",
            vec![caps()],
            None,
        ),
        import(
            Func::OurCapabilities,
            "our-capabilities",
            vec![],
            Some(caps()),
        ),
    ]
}

/// Message and blob imports.
fn message_imports() -> Vec<Import> {
    let t = types();
    let option = Layout::option;
    let send = vec![
        t.address.clone(),
        t.request.clone(),
        option(t.bytes.clone()),
        option(t.blob.clone()),
    ];
    vec![
        import(
            Func::Receive,
            "receive",
            vec![],
            Some(Layout::result(
                Some(Layout::record(vec![t.address.clone(), t.message.clone()])),
                Some(Layout::record(vec![
                    t.send_error.clone(),
                    option(t.bytes.clone()),
                ])),
            )),
        ),
        import(Func::HasBlob, "has-blob", vec![], Some(Layout::bool())),
        import(
            Func::GetBlob,
            "get-blob",
            vec![],
            Some(option(t.blob.clone())),
        ),
        import(
            Func::LastBlob,
            "last-blob",
            vec![],
            Some(option(t.blob.clone())),
        ),
        import(Func::SendRequest, "send-request", send.clone(), None),
        import(
            Func::SendRequests,
            "send-requests",
            vec![Layout::list(Layout::record(send))],
            None,
        ),
        import(
            Func::SendResponse,
            "send-response",
            vec![t.response.clone(), option(t.blob.clone())],
            None,
        ),
        import(
            Func::SendAndAwaitResponse,
            "send-and-await-response",
            vec![t.address.clone(), t.request.clone(), option(t.blob.clone())],
            Some(Layout::result(
                Some(Layout::record(vec![t.address.clone(), t.message.clone()])),
                Some(t.send_error.clone()),
            )),
        ),
    ]
}

fn build_imports() -> Vec<Import> {
    let mut imports = system_imports();
    imports.extend(capability_imports());
    imports.extend(message_imports());
    imports
}

/// Every import, in WIT order.
pub(crate) fn imports() -> &'static [Import] {
    static IMPORTS: OnceLock<Vec<Import>> = OnceLock::new();
    IMPORTS.get_or_init(build_imports)
}

/// The import of `func`.
pub(crate) fn import_of(func: Func) -> &'static Import {
    // The table has one entry per `Func`, in declaration order.
    let index = func as usize;
    &imports()[index]
}

// ---- Lifted values → kernel types ----

const SHAPE: AbiError = AbiError::Shape("a lifted value");

/// The fields of a lifted record.
pub(crate) fn fields<const N: usize>(value: Val) -> Result<[Val; N], AbiError> {
    match value {
        Val::Record(fields) => fields.try_into().map_err(|_| SHAPE),
        _ => Err(SHAPE),
    }
}

pub(crate) fn string(value: Val) -> Result<String, AbiError> {
    match value {
        Val::String(text) => Ok(text),
        _ => Err(SHAPE),
    }
}

pub(crate) fn bytes(value: Val) -> Result<Vec<u8>, AbiError> {
    match value {
        Val::Bytes(bytes) => Ok(bytes),
        _ => Err(SHAPE),
    }
}

pub(crate) fn boolean(value: Val) -> Result<bool, AbiError> {
    match value {
        Val::Bool(b) => Ok(b),
        _ => Err(SHAPE),
    }
}

pub(crate) fn list(value: Val) -> Result<Vec<Val>, AbiError> {
    match value {
        Val::List(items) => Ok(items),
        _ => Err(SHAPE),
    }
}

/// An `option<T>`'s payload.
pub(crate) fn option(value: Val) -> Result<Option<Val>, AbiError> {
    match value {
        Val::Variant(0, None) => Ok(None),
        Val::Variant(1, Some(payload)) => Ok(Some(*payload)),
        _ => Err(SHAPE),
    }
}

/// A guest-supplied process id; invalid ids are a guest error.
pub(crate) fn process_id(value: Val) -> Result<ProcessId, String> {
    let [process, package, publisher] = fields(value).map_err(|e| e.to_string())?;
    let (process, package, publisher) = (
        string(process).map_err(|e| e.to_string())?,
        string(package).map_err(|e| e.to_string())?,
        string(publisher).map_err(|e| e.to_string())?,
    );
    ProcessId::new(&process, &package, &publisher)
        .map_err(|e| format!("invalid process id {process}:{package}:{publisher}: {e}"))
}

pub(crate) fn address(value: Val) -> Result<Address, String> {
    let [node, process] = fields(value).map_err(|e| e.to_string())?;
    let node = string(node).map_err(|e| e.to_string())?;
    if node.is_empty() {
        return Err("an address with an empty node".into());
    }
    Ok(Address::new(&node, process_id(process)?))
}

pub(crate) fn blob(value: Val) -> Result<LazyLoadBlob, String> {
    let [mime, bytes_] = fields(value).map_err(|e| e.to_string())?;
    Ok(LazyLoadBlob {
        mime: option(mime)
            .and_then(|m| m.map(string).transpose())
            .map_err(|e| e.to_string())?,
        bytes: bytes(bytes_).map_err(|e| e.to_string())?,
    })
}

pub(crate) fn optional<T>(
    value: Val,
    lift: impl Fn(Val) -> Result<T, String>,
) -> Result<Option<T>, String> {
    option(value)
        .map_err(|e| e.to_string())?
        .map(lift)
        .transpose()
}

pub(crate) fn capability(value: Val) -> Result<Capability, String> {
    let [issuer, params] = fields(value).map_err(|e| e.to_string())?;
    Ok(Capability {
        issuer: address(issuer)?,
        params: string(params).map_err(|e| e.to_string())?,
    })
}

pub(crate) fn capabilities(value: Val) -> Result<Vec<Capability>, String> {
    list(value)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(capability)
        .collect()
}

/// Capabilities as the kernel carries them: WIT capabilities have no signature.
fn unsigned(value: Val) -> Result<Vec<(Capability, Vec<u8>)>, String> {
    Ok(capabilities(value)?
        .into_iter()
        .map(|cap| (cap, Vec::new()))
        .collect())
}

fn metadata(value: Val) -> Result<Option<String>, String> {
    optional(value, |v| string(v).map_err(|e| e.to_string()))
}

pub(crate) fn request(value: Val) -> Result<Request, String> {
    let [inherit, expects, body, meta, caps] = fields(value).map_err(|e| e.to_string())?;
    Ok(Request {
        inherit: boolean(inherit).map_err(|e| e.to_string())?,
        expects_response: optional(expects, |v| match v {
            Val::U64(seconds) => Ok(seconds),
            _ => Err(SHAPE.to_string()),
        })?,
        body: bytes(body).map_err(|e| e.to_string())?,
        metadata: metadata(meta)?,
        capabilities: unsigned(caps)?,
    })
}

pub(crate) fn response(value: Val) -> Result<Response, String> {
    let [inherit, body, meta, caps] = fields(value).map_err(|e| e.to_string())?;
    Ok(Response {
        inherit: boolean(inherit).map_err(|e| e.to_string())?,
        body: bytes(body).map_err(|e| e.to_string())?,
        metadata: metadata(meta)?,
        capabilities: unsigned(caps)?,
    })
}

pub(crate) fn on_exit(value: Val) -> Result<OnExit, String> {
    match value {
        Val::Variant(0, None) => Ok(OnExit::None),
        Val::Variant(1, None) => Ok(OnExit::Restart),
        Val::Variant(2, Some(requests)) => {
            let items = list(*requests).map_err(|e| e.to_string())?;
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let [target, req, blob_] = fields(item).map_err(|e| e.to_string())?;
                out.push((address(target)?, request(req)?, optional(blob_, blob)?));
            }
            Ok(OnExit::Requests(out))
        }
        _ => Err(SHAPE.to_string()),
    }
}

// ---- Kernel types → values to lower ----

fn some(value: Val) -> Val {
    Val::Variant(1, Some(Box::new(value)))
}

const NONE: Val = Val::Variant(0, None);

pub(crate) fn option_of<T>(value: Option<T>, lower: impl Fn(T) -> Val) -> Val {
    value.map_or(NONE, |v| some(lower(v)))
}

pub(crate) fn process_id_val(id: &ProcessId) -> Val {
    Val::Record(vec![
        Val::String(id.process().into()),
        Val::String(id.package().into()),
        Val::String(id.publisher().into()),
    ])
}

pub(crate) fn address_val(address: &Address) -> Val {
    Val::Record(vec![
        Val::String(address.node.to_string()),
        process_id_val(&address.process),
    ])
}

pub(crate) fn blob_val(blob: LazyLoadBlob) -> Val {
    Val::Record(vec![
        option_of(blob.mime, Val::String),
        Val::Bytes(blob.bytes),
    ])
}

pub(crate) fn capability_val(cap: &Capability) -> Val {
    Val::Record(vec![
        address_val(&cap.issuer),
        Val::String(cap.params.clone()),
    ])
}

pub(crate) fn capabilities_val<'a>(caps: impl IntoIterator<Item = &'a Capability>) -> Val {
    Val::List(caps.into_iter().map(capability_val).collect())
}

pub(crate) fn request_val(request: Request) -> Val {
    Val::Record(vec![
        Val::Bool(request.inherit),
        option_of(request.expects_response, Val::U64),
        Val::Bytes(request.body),
        option_of(request.metadata, Val::String),
        capabilities_val(request.capabilities.iter().map(|(cap, _)| cap)),
    ])
}

pub(crate) fn response_val(response: Response) -> Val {
    Val::Record(vec![
        Val::Bool(response.inherit),
        Val::Bytes(response.body),
        option_of(response.metadata, Val::String),
        capabilities_val(response.capabilities.iter().map(|(cap, _)| cap)),
    ])
}

pub(crate) fn message_val(message: Message) -> Val {
    match message {
        Message::Request(request) => Val::Variant(0, Some(Box::new(request_val(request)))),
        Message::Response((response, context)) => Val::Variant(
            1,
            Some(Box::new(Val::Record(vec![
                response_val(response),
                option_of(context, Val::Bytes),
            ]))),
        ),
    }
}

pub(crate) fn send_error_val(error: SendError) -> Val {
    let kind = match error.kind {
        SendErrorKind::Offline => 0,
        SendErrorKind::Timeout => 1,
    };
    Val::Record(vec![
        Val::Variant(kind, None),
        address_val(&error.target),
        message_val(error.message),
        option_of(error.lazy_load_blob, blob_val),
    ])
}

pub(crate) fn on_exit_val(on_exit: OnExit) -> Val {
    match on_exit {
        OnExit::None => Val::Variant(0, None),
        OnExit::Restart => Val::Variant(1, None),
        OnExit::Requests(requests) => Val::Variant(
            2,
            Some(Box::new(Val::List(
                requests
                    .into_iter()
                    .map(|(target, request, blob)| {
                        Val::Record(vec![
                            address_val(&target),
                            request_val(request),
                            option_of(blob, blob_val),
                        ])
                    })
                    .collect(),
            ))),
        ),
    }
}

/// `ok(payload)` or `err(payload)` of a `result`.
pub(crate) fn result_val(result: Result<Val, Val>) -> Val {
    match result {
        Ok(value) => Val::Variant(0, Some(Box::new(value))),
        Err(value) => Val::Variant(1, Some(Box::new(value))),
    }
}
