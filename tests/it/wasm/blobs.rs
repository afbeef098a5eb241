//! Blob queries from a real guest against a model. Whatever the mix of messages with and
//! without blobs, and of `has-blob`, `get-blob`, `last-blob` and an awaited response that
//! carries a blob, the guest sees what the semantics say (spec §4), whether the host answered
//! in place from its snapshot (`src/wasm/inline.rs`) or by suspending the guest.

use super::{ask_probe, probe_world};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::json;

const ECHO: &str = "our.os@echo:test:our.os";

/// One request to the probe: a query, sent with or without a blob, or an await of echo.
#[derive(Clone, Debug)]
enum Ask {
    Has(Option<String>),
    Get(Option<String>),
    Last(Option<String>),
    AwaitGet,
}

fn ask() -> impl Strategy<Value = Ask> {
    let blob = proptest::option::of("[a-z]{1,6}");
    prop_oneof![
        blob.clone().prop_map(Ask::Has),
        blob.clone().prop_map(Ask::Get),
        blob.prop_map(Ask::Last),
        Just(Ask::AwaitGet),
    ]
}

/// How the probe prints a blob (`blob_text` in `guests/probe`).
fn shown(blob: Option<&String>) -> String {
    blob.map_or_else(
        || "none".into(),
        |text| format!("Some(\"text/plain\"):{text}"),
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            concat!(env!("CARGO_MANIFEST_DIR"), "/proptest-regressions/blobs.txt"),
        ))),
        .. ProptestConfig::default()
    })]

    #[test]
    fn blob_queries_always_see_the_model(asks in prop::collection::vec(ask(), 1..10)) {
        let (mut world, _) = probe_world(4);
        // The model: the blob of the message being handled, and the last blob ever delivered.
        let mut last: Option<String> = None;
        for ask in asks {
            let (command, sent) = match &ask {
                Ask::Has(blob) => ("has-blob".to_owned(), blob.clone()),
                Ask::Get(blob) => ("get-blob".to_owned(), blob.clone()),
                Ask::Last(blob) => ("last-blob".to_owned(), blob.clone()),
                Ask::AwaitGet => (format!("await-get-blob {ECHO}"), None),
            };
            if sent.is_some() {
                last.clone_from(&sent);
            }
            let expected = match &ask {
                Ask::Has(blob) => json!(blob.is_some()),
                Ask::Get(blob) => json!(shown(blob.as_ref())),
                Ask::Last(_) => json!(shown(last.as_ref())),
                Ask::AwaitGet => {
                    // Echo answers with the blob the probe sent: the response delivers it.
                    last = Some("payload".into());
                    json!(format!("true {}", shown(last.as_ref())))
                }
            };
            let got = ask_probe(&mut world, &command, sent.as_deref());
            prop_assert_eq!(got, expected, "{:?}", ask);
        }
    }
}
