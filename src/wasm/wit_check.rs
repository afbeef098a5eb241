//! Pins the import table of `wit.rs` against `wit/process.wit` as wit-parser (the library
//! wit-bindgen builds on) reads it: every function's core signature, whether its parameters
//! and result go through memory, and the size and alignment of both. A WIT change or a layout
//! mistake breaks this test instead of guest memory.

use super::abi::Flat;
use super::wit::{self, Func};
use wit_parser::abi::{AbiVariant, WasmType};
use wit_parser::{Resolve, SizeAlign};

fn flat(ty: WasmType) -> Flat {
    match ty {
        WasmType::I32 | WasmType::Pointer | WasmType::Length => Flat::I32,
        WasmType::I64 | WasmType::PointerOrI64 => Flat::I64,
        other => panic!("the interface has no {other:?}"),
    }
}

#[test]
fn every_import_matches_wit_parser() {
    let mut resolve = Resolve::default();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/wit/process.wit");
    let package = resolve.push_file(path).unwrap();
    let mut sizes = SizeAlign::default();
    sizes.fill(&resolve).unwrap();
    let interface = resolve.packages[package].interfaces["standard"];
    let functions = &resolve.interfaces[interface].functions;
    assert_eq!(
        functions.len(),
        wit::imports().len(),
        "one import per WIT function"
    );
    for (name, function) in functions {
        let ours = wit::imports()
            .iter()
            .find(|i| i.name == name.as_str())
            .unwrap_or_else(|| panic!("no import for `{name}`"));
        let signature = resolve.wasm_signature(AbiVariant::GuestImport, function);
        let params: Vec<Flat> = signature.params.iter().copied().map(flat).collect();
        let results: Vec<Flat> = signature.results.iter().copied().map(flat).collect();
        assert_eq!(ours.core_params(), params, "{name}: core params");
        assert_eq!(ours.core_results(), results, "{name}: core results");
        assert_eq!(
            ours.indirect(),
            signature.indirect_params,
            "{name}: indirect"
        );
        assert_eq!(ours.retptr(), signature.retptr, "{name}: retptr");
        let record = sizes.params(function.params.iter().map(|p| &p.ty));
        assert_eq!(
            ours.params.size as usize,
            record.size.size_wasm32(),
            "{name}: params size"
        );
        assert_eq!(
            ours.params.align as usize,
            record.align.align_wasm32(),
            "{name}: params align"
        );
        match (&ours.result, &function.result) {
            (Some(layout), Some(ty)) => {
                assert_eq!(
                    layout.size as usize,
                    sizes.size(ty).size_wasm32(),
                    "{name}: result size"
                );
                assert_eq!(
                    layout.align as usize,
                    sizes.align(ty).align_wasm32(),
                    "{name}: result align"
                );
            }
            (None, None) => {}
            _ => panic!("{name}: result presence differs"),
        }
    }
}

#[test]
fn the_table_is_indexed_by_func() {
    for (index, import) in wit::imports().iter().enumerate() {
        assert_eq!(import.func as usize, index, "{}", import.name);
    }
    assert_eq!(
        wit::import_of(Func::SendAndAwaitResponse).name,
        "send-and-await-response"
    );
}

#[test]
fn the_prototype_offsets_hold() {
    // Cross-checked by hand against wit-bindgen's generated code (notes §3.2).
    let send = wit::import_of(Func::SendRequest);
    assert_eq!((send.params.size, send.params.align), (128, 8));
    let receive = wit::import_of(Func::Receive).result.as_ref().unwrap();
    assert_eq!((receive.size, receive.align), (152, 8));
}
