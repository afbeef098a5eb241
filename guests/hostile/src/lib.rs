//! Hostile: misbehaves as the first request's body says, to show that a guest cannot crash or
//! stall the kernel. `loop` spins forever without a host call; `bomb` allocates until memory
//! runs out; `recurse` recurses without end; `bad-pointer` hands `print-to-terminal` a string
//! outside its memory; `bad-utf8` hands it invalid UTF-8; `panic` panics. `spin N` computes
//! for N iterations and answers (a bounded CPU load, for the preemption benchmark). `churn N`
//! makes N allocations of varied sizes, keeps up to 64 alive, and checks each block's contents
//! before freeing it; it answers `churned N` or panics on a corrupted block (a test of the
//! helper crate's allocator under the kernel). For the kernel's bounds (issue 10):
//! `alias-caps N M` saves N capabilities whose strings all point at one M MiB region;
//! `flood-sends N M [1]` sends N requests of one M MiB body without blocking (expecting
//! responses with a trailing 1); `flood-self N` sends itself N requests expecting responses and
//! never receives; `flood-prints N M` prints one M MiB string N times.
use hyperkernel_guest::{self as hk, Guest, Message};

#[link(wasm_import_module = "hyperware:process/standard@1.0.0")]
unsafe extern "C" {
    #[link_name = "print-to-terminal"]
    fn raw_print(verbosity: i32, ptr: i32, len: i32);
    #[link_name = "save-capabilities"]
    fn raw_save_capabilities(ptr: i32, len: i32);
}

/// The numbers after a command word: `flood-sends 200 30` gives `[200, 30]`.
fn numbers(args: &[u8]) -> Vec<u64> {
    std::str::from_utf8(args)
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect()
}

struct Hostile;

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    recurse(std::hint::black_box(depth + 1)) + 1
}

impl Guest for Hostile {
    fn init(_our: String) {
        hk::install_panic_hook();
        let Ok((_source, Message::Request(request))) = hk::receive() else {
            return;
        };
        match request.body.as_slice() {
            b"loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            b"bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            b"recurse" => {
                std::hint::black_box(recurse(0));
            }
            b"bad-pointer" => unsafe { raw_print(0, 0x7fff_0000, 16) },
            b"bad-utf8" => {
                let bytes = [0xff_u8, 0xfe, 0xfd];
                unsafe { raw_print(0, bytes.as_ptr() as i32, 3) }
            }
            b"panic" => panic!("hostile asked to panic"),
            spin if spin.starts_with(b"spin ") => {
                let n: u64 = std::str::from_utf8(&spin[5..])
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let mut x: u64 = 0;
                for i in 0..n {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
                }
                hk::respond(x.to_string());
            }
            churn if churn.starts_with(b"churn ") => {
                let n: u64 = std::str::from_utf8(&churn[6..])
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                hk::respond(format!("churned {}", churn_blocks(n)));
            }
            alias if alias.starts_with(b"alias-caps ") => {
                // N capabilities whose five strings all point at one region of M MiB.
                let [n, mib] = numbers(&alias[11..])[..] else {
                    return hk::respond("usage");
                };
                let region = vec![b'a'; (mib as usize) << 20];
                let pair = [region.as_ptr() as u32, region.len() as u32];
                let caps: Vec<[u32; 10]> = (0..n)
                    .map(|_| [pair; 5].concat().try_into().unwrap_or([0; 10]))
                    .collect();
                unsafe { raw_save_capabilities(caps.as_ptr() as i32, n as i32) }
                hk::respond("saved");
            }
            flood if flood.starts_with(b"flood-sends ") => {
                // N requests of an M MiB body (the same buffer each time) to TARGET, without a
                // blocking call between them; expecting responses if a third number is 1.
                let args = numbers(&flood[12..]);
                let (n, mib, expects) = (args[0], args[1], args.get(2) == Some(&1));
                let target = hk::local("nobody", "test", "our.os");
                let mut request = hk::request(vec![7_u8; (mib as usize) << 20]);
                request.expects_response = expects.then_some(5);
                for _ in 0..n {
                    hk::send_request(&target, &request, None, None);
                }
                hk::respond("flooded");
            }
            flood if flood.starts_with(b"flood-self ") => {
                // N requests expecting a response to ourselves, never received.
                let n = numbers(&flood[11..])[0];
                let our = hk::our();
                let mut request = hk::request("me");
                request.expects_response = Some(3600);
                for _ in 0..n {
                    hk::send_request(&our, &request, None, None);
                }
                hk::respond("flooded");
            }
            prints if prints.starts_with(b"flood-prints ") => {
                let [n, mib] = numbers(&prints[13..])[..] else {
                    return hk::respond("usage");
                };
                let text = vec![b'p'; (mib as usize) << 20];
                for _ in 0..n {
                    unsafe { raw_print(0, text.as_ptr() as i32, text.len() as i32) }
                }
                hk::respond("printed");
            }
            _ => hk::respond("unknown"),
        }
    }
}

/// `churn N`: allocations of sizes 1..=9000 (small and large classes, growing and shrinking
/// reallocations), each filled with its own byte and checked before it is freed.
fn churn_blocks(n: u64) -> u64 {
    let mut live: Vec<(u8, Vec<u8>)> = Vec::new();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..n {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let size = (state >> 33) as usize % 9000 + 1;
        let fill = (i % 251) as u8;
        let mut block = vec![fill; size];
        if i % 7 == 0 {
            block.resize(size * 2 + 17, fill);
        }
        live.push((fill, block));
        if live.len() > 64 {
            let (fill, block) = live.swap_remove((state >> 7) as usize % live.len());
            assert!(block.iter().all(|b| *b == fill), "a block was corrupted");
        }
    }
    for (fill, block) in live {
        assert!(block.iter().all(|b| *b == fill), "a block was corrupted");
    }
    n
}

hk::export_process!(Hostile);
